"""Times the admin API requests the console's pages make, signed in as a tenant admin through
the console's own session (cookie + CSRF token), against a running Keyward. Prints JSON.

usage: page_times.py BASE_URL TENANT_ID ADMIN_KEY REPEATS
"""

import datetime
import json
import statistics
import sys
import time
import urllib.request


def request(base, path, method="GET", body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req) as response:
        return response.read(), response.headers


def sign_in(base, key):
    body, headers = request(base, "/console/api/session")
    csrf = json.loads(body)["csrf_token"]
    body, headers = request(base, "/console/api/session", "POST", {"token": key},
                            {"cookie": f"kw_console_signin={csrf}", "x-keyward-csrf": csrf})
    session = [value.split(";")[0] for name, value in headers.items() if name.lower() == "set-cookie"
               and value.startswith("kw_console=")][0]
    return {"cookie": session, "x-keyward-csrf": json.loads(body)["csrf_token"]}


def main():
    base, tenant, key, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    auth = sign_in(base, key)
    today = datetime.datetime.now(datetime.timezone.utc).date()
    month = today.replace(day=1).isoformat()
    t = f"/admin/v1/tenants/{tenant}"
    pages = {
        "usage": [f"{t}/usage?group_by=day&from={month}&to={today}", f"{t}/usage?group_by=model&from={month}&to={today}",
                  f"{t}/usage?from={month}&to={today}&limit=50"],
        "overview": [f"{t}/usage?group_by=day&from={month}", f"{t}/usage?group_by=status&from={today}",
                     f"{t}/budgets", f"{t}/credentials?limit=500"],
        "credentials": [f"{t}/credentials?limit=500"],
        "audit": [f"{t}/audit?limit=100"],
    }
    result = {}
    for page, paths in pages.items():
        timings = {path: [] for path in paths}
        for _ in range(repeats):
            for path in paths:
                started = time.perf_counter()
                request(base, path, headers=auth)
                timings[path].append((time.perf_counter() - started) * 1000)
        result[page] = {
            "requests": {path.split("?")[0].rsplit("/", 1)[-1] + ("?" + path.split("?")[1] if "?" in path else ""):
                         {"first_ms": round(values[0], 1), "p50_ms": round(statistics.median(values), 1),
                          "max_ms": round(max(values), 1)}
                         for path, values in timings.items()},
            "page_p50_ms": round(sum(statistics.median(values) for values in timings.values()), 1),
            "page_first_ms": round(sum(values[0] for values in timings.values()), 1),
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
