"""Generates the retrieval benchmark's fixture: 500 documents and 200 labelled questions.

Each document is one subject (a domain such as parking, travel or on-call) for one entity (an
office, a product, a team, a vendor...): a title and four facts with values of its own, plus a
few general sentences. Each question asks for one fact of one document in other words: the
entity is named, the fact is paraphrased (the question templates avoid the documents' content
words), so lexical overlap alone does not find the answer. Deterministic (seed 20):

    python3 bench/retrieval/make_corpus.py fixtures/retrieval
"""

import json
import pathlib
import random
import sys

CITIES = ["Lyon", "Osaka", "Porto", "Leeds", "Austin", "Krakow", "Dublin", "Tampere", "Lagos", "Perth",
          "Quito", "Malmo", "Graz", "Busan", "Halifax", "Bergen", "Tucson", "Cork", "Gdansk", "Nantes"]
PRODUCTS = ["Atlas", "Beacon", "Cobalt", "Drift", "Ember", "Fable", "Garnet", "Harbor", "Iris", "Juniper",
            "Kestrel", "Lumen", "Mosaic", "Nimbus", "Onyx", "Pioneer", "Quartz", "Raven", "Sable", "Tundra"]
TEAMS = ["Payments", "Search", "Identity", "Billing", "Mobile", "Data Platform", "Growth", "Support Tools",
         "Infrastructure", "Security Engineering", "Checkout", "Analytics", "Messaging", "Onboarding",
         "Partner API", "Fraud", "Localization", "Design Systems", "Reliability", "Catalog"]
VENDORS = ["Northwind", "Contoso", "Fabrikam", "Tailspin", "Wingtip", "Litware", "Proseware", "Adatum",
           "Lucerne", "Margie", "Trey", "Humongous", "Coho", "Alpine", "Blue Yonder", "Fourth Coffee",
           "Graphic Design Institute", "Woodgrove", "Relecloud", "Southridge"]

# domain: (title, entities, [(document sentence, question), ...] × 4, general sentences)
# {e} is the entity; {a}, {b} are values drawn per document.
DOMAINS = [
    ("Parking at the {e} office", CITIES, [
        ("Staff may leave a car in the basement garage of the {e} office; spaces are allocated by lottery every {a} months.",
         "How often is it decided who gets a spot to put a vehicle under the {e} building?"),
        ("Electric vehicle chargers are available on level {a} of the {e} garage.",
         "On which floor can I plug in my battery-powered car in {e}?"),
        ("Bicycles are stored in the locked room next to the {e} reception, which holds {a} bikes.",
         "How many cycles fit in the secure storage in {e}?"),
        ("Visitors to {e} receive a temporary parking permit from the front desk valid for {a} hours.",
         "For how long can a guest coming to {e} keep their vehicle on site?")],
     ["Parking rules apply to all employees and contractors.", "Report damaged vehicles to facilities."]),
    ("Business travel from {e}", CITIES, [
        ("Flights booked from {e} must be economy class unless the journey exceeds {a} hours.",
         "When may someone departing {e} sit in a more comfortable cabin on a plane?"),
        ("The daily meal allowance for trips starting in {e} is {a} euros.",
         "How much food money per day do I get when I leave {e} for work?"),
        ("Hotel rooms for {e} travellers are capped at {a} euros per night.",
         "What is the most I can spend on accommodation for one evening on a {e} trip?"),
        ("Expense reports for {e} journeys are due within {a} days of returning.",
         "How long after I get back to {e} do I have to claim my costs?")],
     ["Travel must be approved by a manager before booking.", "Keep all receipts."]),
    ("On-call rotation of the {e} team", TEAMS, [
        ("Engineers in {e} are paged through the incident tool and must acknowledge within {a} minutes.",
         "How quickly must a {e} engineer respond when woken by an alert?"),
        ("A {e} on-call shift lasts {a} days and hands over on Mondays.",
         "For how many days is a {e} person responsible for emergencies at a stretch?"),
        ("{e} pays an on-call stipend of {a} euros per week of duty.",
         "What extra compensation does {e} give for standing by for outages?"),
        ("After a night with more than {b} pages, {e} engineers may take the next morning off.",
         "When can someone from {e} start late after a rough night of alerts?")],
     ["Escalation goes to the engineering manager.", "Post-incident reviews are blameless."]),
    ("Release process for {e}", PRODUCTS, [
        ("{e} ships to production every {a} days from the main branch.",
         "How frequently do new versions of {e} go live for customers?"),
        ("A {e} release needs approval from {b} reviewers before deployment.",
         "How many people must sign off on a {e} rollout?"),
        ("Feature flags for {e} are removed {a} weeks after full rollout.",
         "When are {e} toggles cleaned up once everyone has a feature?"),
        ("Rollbacks of {e} are automatic when the error rate exceeds {b} percent.",
         "At what failure level does {e} revert to the previous build on its own?")],
     ["Release notes are published in the changelog.", "Hotfixes follow the same checks."]),
    ("Support contract with {e}", VENDORS, [
        ("{e} answers priority-one tickets within {a} hours, around the clock.",
         "How fast does {e} react to our most urgent problems?"),
        ("The {e} agreement renews every {b} years unless cancelled {a} months ahead.",
         "How long does the deal with {e} run before it extends itself?"),
        ("Credits of {a} percent of the monthly fee are owed when {e} misses its availability target.",
         "What refund do we get if {e} has too much downtime?"),
        ("{e} support is reached through the portal or the hotline on extension {a}.",
         "Which phone number inside the company connects me to {e} help?")],
     ["Contract questions go to procurement.", "Keep ticket numbers for audits."]),
    ("Data retention for {e}", PRODUCTS, [
        ("Logs produced by {e} are kept for {a} days and then deleted.",
         "After how long are {e} diagnostic records wiped?"),
        ("Customer records in {e} are erased {a} days after an account is closed.",
         "When does {e} get rid of a client's information once they leave?"),
        ("Backups of {e} are stored in two regions and kept for {b} weeks.",
         "How many weeks can we go back in time to restore {e}?"),
        ("Analytics events from {e} are anonymised after {a} months.",
         "When are usage statistics of {e} stripped of identities?")],
     ["Legal holds override retention.", "Deletion is logged."]),
    ("Onboarding at the {e} office", CITIES, [
        ("New hires in {e} collect their laptop from the IT desk on floor {a} on their first day.",
         "Where do I pick up my computer when I start working in {e}?"),
        ("Badge photos for {e} are taken at reception between {a} and {b} o'clock.",
         "When can I get my picture done for the access card in {e}?"),
        ("Every newcomer in {e} is assigned a buddy for {a} weeks.",
         "For how long does someone in {e} accompany a fresh employee?"),
        ("The {e} welcome session happens every {c} at 10:00 in the large meeting room.",
         "On which weekday is the introduction for starters held in {e}?")],
     ["HR sends the schedule a week before the start date.", "Bring an identity document."]),
    ("Security requirements for {e}", PRODUCTS, [
        ("Administrator accounts of {e} require a hardware key for every sign-in.",
         "What physical device do {e} admins need to log on?"),
        ("Passwords for {e} service accounts rotate every {a} days.",
         "How often are the secrets of {e} machine users changed?"),
        ("{e} is scanned for vulnerabilities every {b} days and critical findings are fixed within {a} days.",
         "How long may a severe weakness in {e} stay open?"),
        ("Access to {e} production is reviewed every {a} months by the owners.",
         "How often does someone check who can touch the live {e} systems?")],
     ["Exceptions need approval by security.", "Report incidents immediately."]),
    ("Budget rules of the {e} team", TEAMS, [
        ("{e} may spend up to {a} euros without a purchase order.",
         "What is the largest amount {e} can pay for something without paperwork?"),
        ("Software licences for {e} are renewed in month {b} of the fiscal year.",
         "When are the {e} program subscriptions extended each year?"),
        ("Conference attendance in {e} is limited to {b} events per person per year.",
         "How many industry gatherings can a {e} member go to annually?"),
        ("{e} reviews its cloud spending every {a} weeks with finance.",
         "How often does {e} look at its hosting bill with the money people?")],
     ["Unused budget does not roll over.", "Ask finance for exceptions."]),
    ("Office hours in {e}", CITIES, [
        ("The {e} office opens at {a}:00 and the doors lock at {b}:00.",
         "From what time can I get into the {e} building in the morning?"),
        ("The canteen in {e} serves lunch for {a} euros per meal.",
         "How much does a midday meal cost at the {e} restaurant?"),
        ("Quiet rooms in {e} can be booked for at most {a} hours.",
         "What is the longest I can reserve a silent space in {e}?"),
        ("On public holidays the {e} office is closed and the alarm is set from {b}:00.",
         "Is the {e} workplace accessible on bank holidays?")],
     ["Cleaning happens in the evening.", "Lost items are kept at reception."]),
    ("Incident communication for {e}", PRODUCTS, [
        ("Customers of {e} are informed on the status page within {a} minutes of a major incident.",
         "How soon do {e} users learn about a big outage?"),
        ("Incident updates for {e} are posted every {b} minutes until resolution.",
         "How often is news shared while {e} is broken?"),
        ("A written report on {e} outages is published within {a} business days.",
         "When do we release the analysis after {e} went down?"),
        ("The {e} incident commander is chosen from a rota of {b} senior engineers.",
         "From how many experienced people is the {e} crisis lead picked?")],
     ["Internal chat has a channel per incident.", "Legal reviews customer notices."]),
    ("Hardware refresh for the {e} team", TEAMS, [
        ("Laptops in {e} are replaced every {a} years.",
         "How long does a {e} member keep a notebook computer before getting a new one?"),
        ("{e} engineers may choose a second monitor of up to {b} inches.",
         "How large an extra screen can a {e} developer pick?"),
        ("Broken equipment in {e} is swapped within {a} working days.",
         "How quickly is damaged gear replaced for {e}?"),
        ("{e} phones are company owned and returned after {b} years.",
         "When must {e} give back their mobile devices?")],
     ["Personal devices need enrollment.", "Recycling is handled by IT."]),
    ("Invoicing with {e}", VENDORS, [
        ("{e} invoices are paid {a} days after receipt.",
         "How long do we take to settle bills from {e}?"),
        ("Purchase orders to {e} above {a} thousand euros need the CFO's signature.",
         "Which large orders to {e} must the finance chief approve?"),
        ("{e} charges a late fee of {b} percent per month.",
         "What penalty does {e} apply when we pay after the deadline?"),
        ("Disputes with {e} invoices must be raised within {a} days.",
         "How long do we have to contest a bill from {e}?")],
     ["Invoices are sent to accounts payable.", "Currency is euros."]),
    ("API limits of {e}", PRODUCTS, [
        ("The {e} API accepts {a} requests per minute per client.",
         "How many calls each minute can one integration make to {e}?"),
        ("{e} API tokens expire after {b} days.",
         "When do {e} access credentials for programs stop working?"),
        ("Bulk exports from {e} are limited to {a} thousand rows.",
         "What is the maximum size of a mass download from {e}?"),
        ("Webhooks from {e} are retried {b} times over a day.",
         "How many attempts does {e} make to deliver a callback that failed?")],
     ["Limits are raised on request.", "Use pagination for large lists."]),
    ("Wellbeing benefits in {e}", CITIES, [
        ("Employees in {e} receive a sports allowance of {a} euros per month.",
         "How much does the company give people in {e} each month for exercise?"),
        ("The {e} office offers a massage on {c}s.",
         "On which day can someone in {e} get a relaxing treatment at work?"),
        ("Counselling sessions for {e} staff are free for up to {b} sessions a year.",
         "How many therapy meetings per year are covered in {e}?"),
        ("{e} employees get {a} extra days off after five years of service.",
         "What additional holiday do long-serving people in {e} earn?")],
     ["Benefits are taxed as required by law.", "Ask HR for details."]),
    ("Code review in the {e} team", TEAMS, [
        ("Pull requests in {e} need {b} approvals before merging.",
         "How many colleagues must agree before {e} code lands?"),
        ("{e} reviewers should respond within {a} hours.",
         "How long can a {e} change wait for feedback?"),
        ("{e} changes larger than {a} hundred lines must be split.",
         "When is a {e} modification considered too big to look at in one go?"),
        ("{e} runs static analysis on every commit and blocks on {b} severity.",
         "What level of automated finding stops a {e} change?")],
     ["Tests must pass.", "Style follows the formatter."]),
    ("Printing at the {e} office", CITIES, [
        ("Printers in {e} release jobs after a badge tap, and colour prints are limited to {a} pages a week.",
         "How many coloured sheets can I produce per week in {e}?"),
        ("Large format plotting in {e} is available in room {a}{b}.",
         "Where can I make a poster-sized print in {e}?"),
        ("Toner for {e} printers is ordered when below {a} percent.",
         "When is ink replenished for the {e} machines?"),
        ("Confidential documents in {e} go into the locked bins emptied every {c}.",
         "When are the secure shredding containers in {e} collected?")],
     ["Print double-sided by default.", "Paper is recycled."]),
    ("Customer onboarding for {e}", PRODUCTS, [
        ("New {e} customers get a kickoff call within {a} days of signing.",
         "How soon after a deal closes does a {e} client have a first meeting?"),
        ("{e} trial accounts last {b} weeks.",
         "How long can a prospect test {e} for free?"),
        ("Data imports into {e} are done by the services team for up to {a} thousand records.",
         "Who moves a client's existing records into {e}, and up to what volume?"),
        ("{e} admins receive {b} training sessions included in the licence.",
         "How many lessons come free with a {e} subscription?")],
     ["Success managers own the relationship.", "Escalations go to support."]),
    ("Shipping from {e}", VENDORS, [
        ("Orders from {e} arrive within {a} business days.",
         "How long does delivery from {e} take?"),
        ("Returns to {e} are accepted for {b} days.",
         "How long do we have to send goods back to {e}?"),
        ("{e} ships free above {a} hundred euros.",
         "From what order value is {e} delivery at no cost?"),
        ("Damaged parcels from {e} must be reported within {b} days.",
         "How quickly must we complain about broken packages from {e}?")],
     ["Tracking numbers are emailed.", "Use the receiving dock."]),
    ("Meeting culture in the {e} team", TEAMS, [
        ("{e} keeps {c}s free of meetings.",
         "Which day is without calls in {e}?"),
        ("{e} stand-ups last at most {a} minutes.",
         "How long is the daily sync of {e}?"),
        ("{e} holds a retrospective every {b} weeks.",
         "How often does {e} reflect on how the work went?"),
        ("Meetings in {e} need an agenda sent {a} hours ahead.",
         "How early must {e} share the topics before a gathering?")],
     ["Notes are shared afterwards.", "Cameras are optional."]),
    ("Accessibility of {e}", PRODUCTS, [
        ("{e} meets WCAG level AA and is audited every {a} months.",
         "How often is {e} checked for people with disabilities?"),
        ("{e} supports screen readers on {b} platforms.",
         "On how many systems can blind users operate {e}?"),
        ("Keyboard shortcuts in {e} are listed by pressing the question mark.",
         "How do I see the hotkeys of {e}?"),
        ("{e} text can be enlarged to {a} hundred percent without loss.",
         "How far can letters be magnified in {e}?")],
     ["Report barriers to the product team.", "Captions are provided for videos."]),
    ("Emergency procedures in {e}", CITIES, [
        ("The assembly point for the {e} office is the car park across the street.",
         "Where do people gather when the {e} building must be evacuated?"),
        ("Fire drills in {e} take place every {a} months.",
         "How often do we practise leaving the {e} premises in a hurry?"),
        ("First aiders in {e} wear {d} lanyards.",
         "How do I recognise medical helpers in {e}?"),
        ("The {e} defibrillator hangs next to lift {b}.",
         "Where is the heart-restarting device in {e}?")],
     ["Call the emergency number first.", "Never use lifts during a fire."]),
    ("Hiring in the {e} team", TEAMS, [
        ("{e} interviews have {b} rounds including a practical exercise.",
         "How many stages do candidates for {e} go through?"),
        ("{e} pays a referral bonus of {a} hundred euros.",
         "What reward does {e} give for recommending someone who gets hired?"),
        ("{e} aims to answer applicants within {a} days.",
         "How long until {e} gets back to people who applied?"),
        ("Offers in {e} are approved by the director and HR within {b} days.",
         "How quickly is a job proposal for {e} signed off?")],
     ["Diversity is considered in every panel.", "Feedback is written."]),
    ("Pricing of {e}", PRODUCTS, [
        ("{e} costs {a} euros per user per month on the standard plan.",
         "What is the monthly per-seat fee of {e}?"),
        ("Annual {e} contracts get a {b} percent discount.",
         "How much cheaper is {e} when paid for a year?"),
        ("{e} nonprofits receive the plan at half price.",
         "What deal do charities get on {e}?"),
        ("Price changes for {e} are announced {b} months in advance.",
         "How much notice is given before {e} becomes more expensive?")],
     ["Taxes are added at checkout.", "Enterprise plans are quoted."]),
    ("Insurance with {e}", VENDORS, [
        ("{e} covers business equipment up to {a} thousand euros per claim.",
         "What is the maximum payout from {e} for damaged company gear?"),
        ("Claims with {e} must be filed within {b} days of the loss.",
         "How long after something is stolen can we ask {e} for money?"),
        ("The {e} policy excludes damage from floods.",
         "Which natural disaster is not compensated by {e}?"),
        ("{e} premiums are paid every {b} months.",
         "How often do we pay {e} for the coverage?")],
     ["Policies are stored by legal.", "Report losses quickly."]),
]

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
COLOURS = ["green", "orange", "yellow", "blue", "red"]


def main(out):
    rng = random.Random(20)
    documents, questions = [], []
    for title, entities, facts, general in DOMAINS:
        for entity in entities:
            values = {"a": rng.randint(2, 60), "b": rng.randint(2, 9), "c": rng.choice(DAYS), "d": rng.choice(COLOURS), "e": entity}
            name = title.format(**values)
            sentences = [fact.format(**values) for fact, _ in facts]
            text = f"# {name}\n\n" + " ".join(sentences[:2]) + "\n\n" + " ".join(sentences[2:]) + "\n\n" + " ".join(general)
            documents.append({"id": f"d{len(documents):03d}", "name": name, "text": text, "facts": [q.format(**values) for _, q in facts]})
    for document in rng.sample(documents, 200):
        questions.append({"question": rng.choice(document["facts"]), "document": document["id"]})
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w") as file:
        for document in documents:
            file.write(json.dumps({key: document[key] for key in ("id", "name", "text")}) + "\n")
    with open(out / "questions.jsonl", "w") as file:
        for question in questions:
            file.write(json.dumps(question) + "\n")
    print(f"{len(documents)} documents, {len(questions)} questions in {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fixtures/retrieval")
