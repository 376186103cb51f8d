"""schemathesis hooks for `scripts/contract-test` (loaded with SCHEMATHESIS_HOOKS=<this file>).

They make schemathesis generate the conditional and idempotency headers the way the server reads
them, and send them as a client that follows the document would. They switch no check off and
leave every generated body, path and query alone.

1. The document gives `If-Match`, `If-None-Match` and `Idempotency-Key` as plain strings (at most
   1000, resp. 1-255 characters), but the server parses them: `*` or a list of entity-tags (RFC 9110
   §8.8.3, §13.1.1-2), and a key of visible ASCII that is not empty once its structured-field quotes
   are removed. A string outside that grammar (`0`, `""`) is answered 400, which schemathesis,
   reading the document, takes for a schema-valid request refused. Until the document states the
   grammar itself, a `pattern` that matches exactly what the server accepts is added to these
   header parameters when the schema is loaded (a pattern the document has is kept): schema-valid
   values are then well-formed ones, and the negative data for these headers, which the server
   must refuse (400), are the malformed ones. The entity-tag headers also get a format of their
   own (see FORMATS below), so that the coverage phase can find a valid value for them.

2. The document asks for an `Idempotency-Key` "unique to this request"; the same key with another
   request is 422. schemathesis draws keys at random (`0` again and again) and so reuses them for
   other bodies, which no client following the document does. Before each call of a positive case,
   its key gets a prefix unique within the run (a counter, so runs stay reproducible), keeping
   what was generated after it; negative cases are sent as generated. The replay and the 422
   themselves are checked by scripts/contract/scenario.py.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import schemathesis
from hypothesis import strategies as st

# What the server accepts, as ECMA-262 patterns (JSON Schema's) that Python's `re` reads alike.
# Header values reach the server as visible ASCII, space and tab (anything else is 400 already).
ETAGC = r'[\x21\x23-\x7E]'  # RFC 9110 etagc, without obs-text (not visible ASCII)
ENTITY_TAG = rf'(W/)?"{ETAGC}*"'
# `*`, or entity-tags separated by commas, with optional white space and empty list elements
# (RFC 9110 §5.6.1), as src/http.rs `TagList::parse` reads them.
TAG_LIST = rf'^[ \t]*(\*|[ \t,]*{ENTITY_TAG}([ \t]*,[ \t,]*{ENTITY_TAG})*[ \t,]*)[ \t]*$'
# A key is the value without surrounding white space and double quotes (src/idempotency.rs): it
# must keep a character, which holds when the value has a visible character other than `"`, or
# white space between two quotes.
IDEMPOTENCY_KEY = r'^[\t\x20-\x7E]*([\x21\x23-\x7E]|"[ \t]+")[\t\x20-\x7E]*$'

PATTERNS = {
    "if-match": TAG_LIST,
    "if-none-match": TAG_LIST,
    "idempotency-key": IDEMPOTENCY_KEY,
}
KEY_MAX_LENGTH = 255
_KEY = re.compile(IDEMPOTENCY_KEY)
_serial = itertools.count(1)

# The values of the entity-tag headers, as formats of their own. A string that satisfies TAG_LIST
# has a `"` or a `*`, and schemathesis's coverage phase draws header values from letters and digits
# only: without a format it finds no valid value for these optional headers and puts an invalid one
# (`0`) in every case it derives from them, positive ones and "missing Authorization" ones included.
# The coverage phase takes a format's simplest value: `*` for If-Match (the write goes ahead if the
# record exists), a tag that matches nothing for If-None-Match (200 with a body to check). Tags like
# the server's own (`"v3"`, `"v3-p"`: a version as anyone or as an organizer sees the record) are
# drawn too, so that some conditional requests match.
_opaque = st.text(alphabet=[chr(c) for c in (0x21, *range(0x23, 0x7F))], max_size=24)
_tag = st.one_of(
    st.builds(lambda version, private: f'"v{version}{"-p" if private else ""}"', st.integers(1, 60), st.booleans()),
    st.builds(lambda weak, opaque: f'{"W/" if weak else ""}"{opaque}"', st.booleans(), _opaque),
)
_tags = st.lists(_tag, min_size=1, max_size=4).map(", ".join)
FORMATS = {"if-match": "lhs-if-match", "if-none-match": "lhs-if-none-match"}
schemathesis.openapi.format("lhs-if-match", st.one_of(st.just("*"), _tags))
schemathesis.openapi.format("lhs-if-none-match", st.one_of(_tags, st.just("*")))


@schemathesis.hook
def before_load_schema(context: Any, raw_schema: dict[str, Any]) -> None:
    for item in (raw_schema.get("paths") or {}).values():
        for operation in item.values() if isinstance(item, dict) else ():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters") or ():
                if not isinstance(parameter, dict) or parameter.get("in") != "header":
                    continue
                name = str(parameter.get("name", "")).lower()
                schema = parameter.get("schema")
                if name not in PATTERNS or not isinstance(schema, dict):
                    continue
                schema.setdefault("pattern", PATTERNS[name])
                if name in FORMATS:
                    schema.setdefault("format", FORMATS[name])


def _schema_valid_key(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= KEY_MAX_LENGTH and _KEY.match(value) is not None


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    # Negative cases are sent as generated: their keys are never stored. (An edit here also makes
    # schemathesis revalidate the case against the parameters only, which would turn a "missing
    # Authorization" case into a positive one.)
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    headers = case.headers or {}
    for name, value in list(headers.items()):
        if name.lower() == "idempotency-key" and _schema_valid_key(value):
            prefix = f"st{next(_serial)}-"
            headers[name] = (prefix + value)[:KEY_MAX_LENGTH]
