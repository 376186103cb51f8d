"""Checks that a DOM dumped by headless Chromium from /docs/ shows every operation of the
OpenAPI document: Swagger UI must have fetched the document and rendered it."""

import html
import json
import re
import sys


def main(spec_path: str, dom_path: str) -> int:
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    with open(dom_path, encoding="utf-8") as f:
        dom = html.unescape(f.read())

    rendered = len(re.findall(r'class="opblock opblock-', dom))
    expected = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "operationId" in operation:
                expected.append((method, path, operation.get("summary", "")))

    missing = [
        f"{method.upper()} {path} ({summary})"
        for method, path, summary in expected
        if summary and summary not in dom
    ]
    print(f"docs: {rendered} operation blocks rendered, {len(expected)} operations in the document")
    if rendered < len(expected) or missing:
        print("docs: these operations are not on the page:", *missing, sep="\n  ", file=sys.stderr)
        print(dom[:2000], file=sys.stderr)
        return 1
    if spec["info"]["title"] not in dom:
        print("docs: the API title is not on the page", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
