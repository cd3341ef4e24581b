"""Replaces (or appends) one `## ` section of docs/performance.md with a generated file.

    python3 bench/splice_section.py bench/knowledge.md "Knowledge bases (issue #20)"
"""

import re
import sys

section_file, title = sys.argv[1], sys.argv[2]
doc = open("docs/performance.md").read()
section = open(section_file).read().rstrip("\n")
pattern = re.compile(r"## " + re.escape(title) + r"\n.*?(?=\n## |\Z)", re.S)
if pattern.search(doc):
    doc = pattern.sub(lambda _: section, doc)
else:
    doc = doc.rstrip("\n") + "\n\n" + section + "\n"
open("docs/performance.md", "w").write(doc)
