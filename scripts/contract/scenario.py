#!/usr/bin/env python3
"""A whole LHS Rounds scenario, driven only through the generated Python client.

The client is the one `openapi-python-client generate --path openapi/openapi.json` makes from the
committed document (package `lhs_rounds_api_client`); put the directory that holds that package on
PYTHONPATH:

    openapi-python-client generate --path openapi/openapi.json --output-path "$DIR"
    PYTHONPATH=$DIR python scripts/contract/scenario.py --base-url http://127.0.0.1:8080

Every step is checked strictly; the first mismatch stops the run with a message naming the step,
what was expected and what came back, and a non-zero exit status. The scenario cleans up after
itself (it deletes everything it made) and makes no assumption about other data in the database:
totals are checked relative to what the scenario itself created. Department names are unique, so
on a database that already has the scenario's department names (the demo schedule has them), pass
--suffix to make them distinct. With LHS_API_TOKEN set, every request carries
`Authorization: Bearer $LHS_API_TOKEN` (the generated AuthenticatedClient).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from typing import Any, NoReturn

try:
    import lhs_rounds_api_client  # noqa: F401
except ModuleNotFoundError as error:
    if error.name != "lhs_rounds_api_client":
        raise
    sys.exit(
        "scenario: cannot import the generated client package `lhs_rounds_api_client`: generate it with "
        "`openapi-python-client generate --path openapi/openapi.json --output-path DIR` and run with "
        "PYTHONPATH=DIR"
    )

import httpx
from lhs_rounds_api_client import AuthenticatedClient, Client, errors
from lhs_rounds_api_client.api.departments import (
    create_department,
    delete_department,
    get_department,
)
from lhs_rounds_api_client.api.feedback import (
    create_feedback,
    create_round_feedback,
    delete_feedback,
    get_feedback,
    list_feedback,
    list_round_feedback,
    round_feedback_summary,
    triage_feedback,
)
from lhs_rounds_api_client.api.health import healthz
from lhs_rounds_api_client.api.rounds import (
    create_round,
    delete_round,
    get_round,
    list_rounds,
    patch_round,
)
from lhs_rounds_api_client.api.speakers import (
    create_speaker,
    delete_speaker,
    get_speaker,
    list_speaker_rounds,
)
from lhs_rounds_api_client.models import (
    Department,
    DepartmentInput,
    Distribution,
    Feedback,
    FeedbackKind,
    FeedbackStatus,
    FeedbackSummary,
    FeedbackTriagePatch,
    Health,
    ListFeedbackKind,
    ListFeedbackStatus,
    ListRoundsWhen,
    PageFeedback,
    PageRound,
    Problem,
    Round,
    RoundInput,
    RoundPatch,
    RoundSessionFeedbackInput,
    RoundSessionFeedbackInputKind,
    RoundStatus,
    SessionFeedbackInput,
    SessionFeedbackInputKind,
    Speaker,
    SpeakerInput,
    SpeakerRole,
    SpeakerSlot,
    TopicSuggestionInput,
    TopicSuggestionInputKind,
)
from lhs_rounds_api_client.types import UNSET, Response

UTC = dt.UTC
EST = dt.timedelta(hours=-5)  # America/New_York in January and February
LOCATION = "BMC – MassMutual 5"

# The people of the LHS Rounds page: (full name, credentials, email or None, department key).
SPEAKERS: list[tuple[str, list[str], str | None, str]] = [
    ("Howard Goldberg", ["MD"], None, "dhq"),
    ("Paul Visintainer", ["PhD"], None, "ci"),
    ("Sandeep Muddasani", [], "s.muddasani@example.org", "ci"),
    ("Doug Salvador", ["MD", "MPH"], None, "dhq"),
    ("Peter Lindenauer", ["MD", "MSc"], None, "dhq"),
    ("Lauren Westafer", ["DO", "MPH"], None, "dhq"),
    ("Tara Lagu", ["MD", "MPH"], "tara.lagu@example.org", "dhq"),
    ("Quinn Pack", ["MD", "MSc"], None, "dhq"),
]
EXPECTED_DISPLAY_NAMES = {
    "Howard Goldberg": "Howard Goldberg, MD",
    "Paul Visintainer": "Paul Visintainer, PhD",
    "Sandeep Muddasani": "Sandeep Muddasani",
    "Doug Salvador": "Doug Salvador, MD, MPH",
    "Peter Lindenauer": "Peter Lindenauer, MD, MSc",
    "Lauren Westafer": "Lauren Westafer, DO, MPH",
    "Tara Lagu": "Tara Lagu, MD, MPH",
    "Quinn Pack": "Quinn Pack, MD, MSc",
}
# The panel's order on the schedule: deliberately neither creation order nor alphabetical.
PANEL_ORDER = [
    "Tara Lagu",
    "Howard Goldberg",
    "Quinn Pack",
    "Paul Visintainer",
    "Lauren Westafer",
    "Sandeep Muddasani",
    "Peter Lindenauer",
    "Doug Salvador",
]


# ---- checking ---------------------------------------------------------------------------------


class ScenarioFailure(Exception):
    pass


CURRENT_STEP = "start"
STEP_NUMBER = 0


@contextmanager
def step(title: str) -> Iterator[None]:
    global CURRENT_STEP, STEP_NUMBER
    STEP_NUMBER += 1
    CURRENT_STEP = f"{STEP_NUMBER}. {title}"
    yield
    print(f"ok   {CURRENT_STEP}", flush=True)


def fail(what: str, expected: Any, got: Any) -> NoReturn:
    raise ScenarioFailure(f"{what}\n    expected: {expected!r}\n    got:      {got!r}")


def expect(what: str, expected: Any, got: Any) -> None:
    # `type(...) is` as well, so that 1 == True or 4 == 4.0 do not pass for the wrong type.
    if got != expected or type(got) is not type(expected):
        fail(what, expected, got)


def expect_true(what: str, condition: bool, got: Any) -> None:
    if not condition:
        fail(what, "a value for which this holds", got)


def no_undocumented_fields(what: str, model: Any) -> None:
    """Answers must have only the documented fields (the generated models keep any other field in
    `additional_properties`); looks into nested models and lists too."""
    if isinstance(model, list):
        for index, item in enumerate(model):
            no_undocumented_fields(f"{what}[{index}]", item)
        return
    if not hasattr(model, "__attrs_attrs__"):
        return
    extra = getattr(model, "additional_properties", {})
    if extra:
        fail(f"{what}: fields that the document does not define", {}, extra)
    for attribute in model.__attrs_attrs__:
        if attribute.name != "additional_properties":
            no_undocumented_fields(f"{what}.{attribute.name}", getattr(model, attribute.name))


def raw_json(response: Response[Any]) -> Any:
    return json.loads(response.content)


def call(what: str, endpoint: Any, /, **kwargs: Any) -> Response[Any]:
    try:
        return endpoint.sync_detailed(**kwargs)
    except errors.UnexpectedStatus as error:
        fail(f"{what}: a status the document lists", "a documented status", f"{error.status_code}: {error.content!r}")
    except httpx.HTTPError as error:
        fail(f"{what}: an answer from the server", "an HTTP answer", f"{type(error).__name__}: {error}")


def call_ok(what: str, endpoint: Any, status: HTTPStatus, model: type | None, /, **kwargs: Any) -> Any:
    """Calls the endpoint, requires `status` and an answer parsed as `model` (None for no body)."""
    response = call(what, endpoint, **kwargs)
    if response.status_code != status:
        fail(f"{what}: HTTP status", f"{status.value} {status.phrase}",
             f"{response.status_code.value}: {response.content.decode(errors='replace')}")
    if model is None:
        expect(f"{what}: body of a {status.value}", b"", response.content)
        return response
    if not isinstance(response.parsed, model):
        fail(f"{what}: parsed answer", model.__name__, response.parsed)
    no_undocumented_fields(what, response.parsed)
    return response


def call_problem(what: str, endpoint: Any, status: HTTPStatus, /, **kwargs: Any) -> Problem:
    """Calls the endpoint and requires an RFC 9457 problem with `status`."""
    return call_problem_response(what, endpoint, status, **kwargs)[0]


def call_problem_response(what: str, endpoint: Any, status: HTTPStatus, /,
                          **kwargs: Any) -> tuple[Problem, Response[Any]]:
    """Like `call_problem`, and the response too (for its headers)."""
    response = call(what, endpoint, **kwargs)
    if response.status_code != status:
        fail(f"{what}: HTTP status", f"{status.value} {status.phrase}",
             f"{response.status_code.value}: {response.content.decode(errors='replace')}")
    expect(f"{what}: Content-Type", "application/problem+json", response.headers.get("content-type"))
    problem = response.parsed
    if not isinstance(problem, Problem):
        fail(f"{what}: parsed answer", "Problem", problem)
    no_undocumented_fields(what, problem)
    expect(f"{what}: problem status", status.value, problem.status)
    expect(f"{what}: problem type", "about:blank", problem.type_)
    expect_true(f"{what}: problem title is a non-empty string", isinstance(problem.title, str) and problem.title != "",
                problem.title)
    expect_true(f"{what}: problem detail is a non-empty string",
                isinstance(problem.detail, str) and problem.detail != "", problem.detail)
    return problem, response


def strong_etag(what: str, response: Response[Any]) -> str:
    """The answer's `ETag` header, which must be a strong entity-tag (`"..."`, not `W/"..."`)."""
    etag = response.headers.get("etag")
    expect_true(f"{what}: a strong ETag header", isinstance(etag, str) and len(etag) >= 2 and etag[0] == '"'
                and etag[-1] == '"' and '"' not in etag[1:-1], etag)
    return etag


def identity_etag(etag: str) -> str:
    """The tag of the identity representation: a compressed answer's strong ETag is another
    representation's (RFC 9110 8.8.3), the identity one with the coding inside the quotes
    (`"v3-gzip"`); If-Match reads either as the same version."""
    for coding in ("-gzip", "-br"):
        if etag.endswith(coding + '"'):
            return etag[: -len(coding) - 1] + '"'
    return etag


def expect_field_error(what: str, problem: Problem, field: str) -> None:
    fields = [] if problem.errors is UNSET else [e.field for e in problem.errors]
    expect_true(f"{what}: an `errors` entry naming `{field}`", field in fields, fields)
    for entry in problem.errors:
        expect_true(f"{what}: errors[].message is a non-empty string",
                    isinstance(entry.message, str) and entry.message != "", entry.message)


def expect_location(what: str, response: Response[Any], path: str) -> None:
    expect(f"{what}: Location header", path, response.headers.get("location"))


def expect_utc(what: str, response: Response[Any], field: str, parsed: dt.datetime, instant: dt.datetime) -> None:
    """`parsed` is the model's datetime, `instant` the expected one (any offset); the wire form must
    be UTC with `Z`."""
    expect(f"{what}: {field}", instant, parsed)
    expect(f"{what}: {field} offset", dt.timedelta(0), parsed.utcoffset())
    expect(f"{what}: {field} as sent", instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
           raw_json(response)[field])


def expect_recent(what: str, stamp: dt.datetime, started: dt.datetime) -> None:
    expect(f"{what}: offset of the stamp", dt.timedelta(0), stamp.utcoffset())
    now = dt.datetime.now(UTC)
    # Generous bounds: the server's clock is this machine's, but allow for rounding and skew.
    expect_true(f"{what}: a time during this run", started - dt.timedelta(minutes=5) <= stamp
                <= now + dt.timedelta(minutes=5), stamp.isoformat())


# ---- the scenario -----------------------------------------------------------------------------


def thursday_on_or_after(day: dt.date) -> dt.date:
    return day + dt.timedelta(days=(3 - day.weekday()) % 7)


def at_noon_new_york(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, 0, tzinfo=dt.timezone(EST))


def run(base_url: str, suffix: str, token: str | None) -> None:
    started = dt.datetime.now(UTC).replace(microsecond=0)

    def new_client() -> Client | AuthenticatedClient:
        if token:
            return AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True,
                                       timeout=httpx.Timeout(30.0))
        return Client(base_url=base_url, raise_on_unexpected_status=True, timeout=httpx.Timeout(30.0))

    client = new_client()

    with step("the server is alive (healthz)"):
        health = call_ok("healthz", healthz, HTTPStatus.OK, Health, client=client).parsed
        expect("healthz: status", "ok", health.status)

    # -- departments
    departments: dict[str, Department] = {}
    with step("create two departments"):
        for key, name, abbreviation in [
            ("dhq", f"Division of Healthcare Quality{suffix}", "DHQ"),
            ("ci", f"Clinical Informatics{suffix}", None),
        ]:
            what = f"create department {name!r}"
            response = call(what, create_department, client=client,
                            body=DepartmentInput(name=name, abbreviation=abbreviation))
            if response.status_code == HTTPStatus.CONFLICT:
                fail(f"{what}: HTTP status (the name exists already: use --suffix on a database that has it)",
                     201, f"409: {response.content.decode(errors='replace')}")
            if response.status_code != HTTPStatus.CREATED or not isinstance(response.parsed, Department):
                fail(f"{what}: HTTP status and body", "201 Department",
                     f"{response.status_code.value}: {response.content.decode(errors='replace')}")
            department = response.parsed
            no_undocumented_fields(what, department)
            expect(f"{what}: name", name, department.name)
            expect(f"{what}: abbreviation", abbreviation, department.abbreviation)
            expect(f"{what}: description", None, department.description)
            expect_true(f"{what}: id is a positive integer", isinstance(department.id, int) and department.id > 0,
                        department.id)
            expect_location(what, response, f"/api/v1/departments/{department.id}")
            expect_recent(f"{what}: created_at", department.created_at, started)
            expect(f"{what}: updated_at equals created_at", department.created_at, department.updated_at)
            departments[key] = department
        expect_true("the two departments have distinct ids", departments["dhq"].id != departments["ci"].id,
                    [d.id for d in departments.values()])
        fetched = call_ok("get_department", get_department, HTTPStatus.OK, Department,
                          id=departments["dhq"].id, client=client).parsed
        expect("get_department: same record as created", departments["dhq"].to_dict(), fetched.to_dict())

    # -- speakers
    speakers: dict[str, Speaker] = {}
    with step("create 8 speakers with credentials"):
        for full_name, credentials, email, department_key in SPEAKERS:
            what = f"create speaker {full_name!r}"
            body = SpeakerInput(full_name=full_name, credentials=credentials, email=email,
                                department_id=departments[department_key].id)
            response = call_ok(what, create_speaker, HTTPStatus.CREATED, Speaker, client=client, body=body)
            speaker = response.parsed
            expect(f"{what}: full_name", full_name, speaker.full_name)
            expect(f"{what}: credentials, in order", credentials, speaker.credentials)
            expect(f"{what}: email", email, speaker.email)
            expect(f"{what}: department_id", departments[department_key].id, speaker.department_id)
            expect(f"{what}: title", None, speaker.title)
            expect(f"{what}: bio", None, speaker.bio)
            expect_location(what, response, f"/api/v1/speakers/{speaker.id}")
            expect_recent(f"{what}: created_at", speaker.created_at, started)
            speakers[full_name] = speaker
        expect("8 speakers with distinct ids", 8, len({s.id for s in speakers.values()}))

    with step("display names carry the credentials ('Tara Lagu, MD, MPH')"):
        for full_name, expected in EXPECTED_DISPLAY_NAMES.items():
            expect(f"display_name of {full_name}", expected, speakers[full_name].display_name)
        fetched = call_ok("get_speaker", get_speaker, HTTPStatus.OK, Speaker,
                          id=speakers["Tara Lagu"].id, client=client).parsed
        expect("get_speaker: display_name", "Tara Lagu, MD, MPH", fetched.display_name)
        expect("get_speaker: same record as created", speakers["Tara Lagu"].to_dict(), fetched.to_dict())

    # -- rounds: January and February of next year, Thursdays, noon to 1 pm in New York (-05:00)
    next_year = started.year + 1
    panel_day = thursday_on_or_after(dt.date(next_year, 1, 15))
    talk_day = thursday_on_or_after(dt.date(next_year, 2, 15))
    panel_starts, panel_ends = at_noon_new_york(panel_day, 12), at_noon_new_york(panel_day, 13)
    talk_starts, talk_ends = at_noon_new_york(talk_day, 12), at_noon_new_york(talk_day, 13)
    panel_title = "Learning from our own data: a panel"
    rounds: dict[str, Round] = {}

    with step(f"schedule a panel round of all 8 on {panel_starts.isoformat()}"):
        what = "create panel round"
        body = RoundInput(
            title=panel_title,
            starts_at=panel_starts,
            ends_at=panel_ends,
            location=LOCATION,
            speakers=[SpeakerSlot(speaker_id=speakers[name].id, role=SpeakerRole.PANELIST) for name in PANEL_ORDER],
            department_ids=[departments["ci"].id, departments["dhq"].id],
        )
        sent = body.to_dict()
        expect(f"{what}: the client sends the New York offset", panel_starts.strftime("%Y-%m-%dT12:00:00-05:00"),
               sent["starts_at"])
        response = call_ok(what, create_round, HTTPStatus.CREATED, Round, client=client, body=body)
        panel = response.parsed
        expect_location(what, response, f"/api/v1/rounds/{panel.id}")
        expect(f"{what}: title", panel_title, panel.title)
        expect(f"{what}: description", None, panel.description)
        expect(f"{what}: location", LOCATION, panel.location)
        expect(f"{what}: status (default)", RoundStatus.SCHEDULED, panel.status)
        expect_utc(what, response, "starts_at", panel.starts_at, panel_starts)
        expect_utc(what, response, "ends_at", panel.ends_at, panel_ends)
        expect(f"{what}: starts at 17:00 UTC", 17, panel.starts_at.hour)
        expect(f"{what}: speakers, in the order given", [speakers[n].id for n in PANEL_ORDER],
               [s.speaker_id for s in panel.speakers])
        expect(f"{what}: roles", [SpeakerRole.PANELIST] * 8, [s.role for s in panel.speakers])
        expect(f"{what}: embedded display names", [EXPECTED_DISPLAY_NAMES[n] for n in PANEL_ORDER],
               [s.display_name for s in panel.speakers])
        expect(f"{what}: embedded full names", PANEL_ORDER, [s.full_name for s in panel.speakers])
        expect(f"{what}: embedded credentials", [speakers[n].credentials for n in PANEL_ORDER],
               [s.credentials for s in panel.speakers])
        expect(f"{what}: department_ids", sorted([departments["ci"].id, departments["dhq"].id]),
               sorted(panel.department_ids))
        expect(f"{what}: departments follow department_ids", panel.department_ids, [d.id for d in panel.departments])
        by_id = {d.id: d for d in departments.values()}
        expect(f"{what}: embedded departments (name, abbreviation)",
               [(by_id[i].name, by_id[i].abbreviation) for i in panel.department_ids],
               [(d.name, d.abbreviation) for d in panel.departments])
        expect_recent(f"{what}: created_at", panel.created_at, started)
        rounds["panel"] = panel

    with step(f"schedule a second round with one presenter on {talk_starts.isoformat()}"):
        what = "create talk round"
        body = RoundInput(
            starts_at=talk_starts,
            ends_at=talk_ends,
            location=LOCATION,
            speakers=[SpeakerSlot(speaker_id=speakers["Tara Lagu"].id)],  # role left to its default
            department_ids=[departments["dhq"].id],
        )
        response = call_ok(what, create_round, HTTPStatus.CREATED, Round, client=client, body=body)
        talk = response.parsed
        expect(f"{what}: title (topic to be announced)", None, talk.title)
        expect_utc(what, response, "starts_at", talk.starts_at, talk_starts)
        expect_utc(what, response, "ends_at", talk.ends_at, talk_ends)
        expect(f"{what}: speakers", [(speakers["Tara Lagu"].id, SpeakerRole.PRESENTER, "Tara Lagu, MD, MPH")],
               [(s.speaker_id, s.role, s.display_name) for s in talk.speakers])
        expect(f"{what}: departments", [(departments["dhq"].id, departments["dhq"].name, "DHQ")],
               [(d.id, d.name, d.abbreviation) for d in talk.departments])
        rounds["talk"] = talk

    with step("get_round answers the panel as created"):
        response = call_ok("get_round", get_round, HTTPStatus.OK, Round, id=panel.id, client=client)
        expect("get_round: same record as created", panel.to_dict(), response.parsed.to_dict())
        expect_utc("get_round", response, "starts_at", response.parsed.starts_at, panel_starts)

    with step("page through upcoming rounds with limit=1"):
        seen: list[Round] = []
        offset, total = 0, None
        while True:
            what = f"list_rounds when=upcoming limit=1 offset={offset}"
            page = call_ok(what, list_rounds, HTTPStatus.OK, PageRound, client=client,
                           when=ListRoundsWhen.UPCOMING, limit=1, offset=offset).parsed
            expect(f"{what}: limit", 1, page.limit)
            expect(f"{what}: offset", offset, page.offset)
            if total is None:
                total = page.total
                expect_true(f"{what}: total counts at least the 2 scheduled rounds", total >= 2, total)
                expect_true(f"{what}: total is small enough to page through", total <= 1000, total)
            else:
                expect(f"{what}: total, the same on every page", total, page.total)
            if offset >= total:
                expect(f"{what}: items past the end", [], page.items)
                break
            expect(f"{what}: number of items", 1, len(page.items))
            seen.append(page.items[0])
            offset += 1
        ids = [r.id for r in seen]
        expect("upcoming: every round once", len(ids), len(set(ids)))
        expect_true("upcoming: both scheduled rounds were seen", panel.id in ids and talk.id in ids, ids)
        expect_true("upcoming: the panel comes before the talk (soonest first)",
                    ids.index(panel.id) < ids.index(talk.id), ids)
        starts = [r.starts_at for r in seen]
        expect("upcoming: soonest first", sorted(starts), starts)
        now = dt.datetime.now(UTC)
        expect_true("upcoming: none has ended", all(r.ends_at > now for r in seen), [r.ends_at for r in seen])
        expect("upcoming: the panel's page item", panel.to_dict(), seen[ids.index(panel.id)].to_dict())

    with step("filter rounds by speaker_id"):
        goldberg, lagu = speakers["Howard Goldberg"].id, speakers["Tara Lagu"].id
        page = call_ok("list_rounds speaker_id=Goldberg", list_rounds, HTTPStatus.OK, PageRound,
                       client=client, speaker_id=goldberg).parsed
        expect("list_rounds speaker_id=Goldberg: total", 1, page.total)
        expect("list_rounds speaker_id=Goldberg: rounds", [panel.id], [r.id for r in page.items])
        expect("list_rounds speaker_id=Goldberg: default limit and offset", (20, 0), (page.limit, page.offset))
        page = call_ok("list_rounds speaker_id=Lagu", list_rounds, HTTPStatus.OK, PageRound,
                       client=client, speaker_id=lagu).parsed
        expect("list_rounds speaker_id=Lagu: total", 2, page.total)
        expect("list_rounds speaker_id=Lagu: rounds, in start order", [panel.id, talk.id], [r.id for r in page.items])
        page = call_ok("list_rounds speaker_id=Lagu limit=1 offset=1", list_rounds, HTTPStatus.OK, PageRound,
                       client=client, speaker_id=lagu, limit=1, offset=1).parsed
        expect("list_rounds speaker_id=Lagu limit=1 offset=1", (2, 1, 1, [talk.id]),
               (page.total, page.limit, page.offset, [r.id for r in page.items]))
        page = call_ok("list_speaker_rounds Lagu", list_speaker_rounds, HTTPStatus.OK, PageRound,
                       id=lagu, client=client).parsed
        expect("list_speaker_rounds Lagu: rounds", (2, [panel.id, talk.id]), (page.total, [r.id for r in page.items]))

    with step("patch the panel's title (merge patch)"):
        new_title = "Learning from our own data: what our wards teach us"
        what = "patch_round title"
        response = call_ok(what, patch_round, HTTPStatus.OK, Round, id=panel.id, client=client,
                           body=RoundPatch(title=new_title))
        patched = response.parsed
        expect(f"{what}: title", new_title, patched.title)
        before, after = panel.to_dict(), patched.to_dict()
        for field in ("title", "updated_at"):
            before.pop(field)
            after.pop(field)
        expect(f"{what}: every other field unchanged", before, after)
        expect_true(f"{what}: updated_at does not go back", patched.updated_at >= panel.updated_at,
                    (panel.updated_at.isoformat(), patched.updated_at.isoformat()))
        expect_utc(what, response, "starts_at", patched.starts_at, panel_starts)
        fetched = call_ok("get_round after patch", get_round, HTTPStatus.OK, Round, id=panel.id, client=client).parsed
        expect("get_round after patch: same as the patch answered", patched.to_dict(), fetched.to_dict())
        panel = patched

    with step("a conflicting edit: a stale If-Match gets 412, a re-read gives the new ETag, the retry succeeds"):
        # We read the panel to edit its title; meanwhile someone else edits its description.
        response = call_ok("get_round (our copy)", get_round, HTTPStatus.OK, Round, id=panel.id, client=client)
        our_etag = strong_etag("get_round (our copy)", response)
        expect("get_round (our copy): the record", panel.to_dict(), response.parsed.to_dict())
        what = "get_round If-None-Match: our copy"
        response = call(what, get_round, id=panel.id, client=client, if_none_match=our_etag)
        expect(f"{what}: HTTP status", HTTPStatus.NOT_MODIFIED, response.status_code)
        expect(f"{what}: no body", b"", response.content)
        expect(f"{what}: ETag", our_etag, response.headers.get("etag"))

        someone_else = new_client()  # another client, as another organizer's browser would be
        their_description = "A panel on what our own data teach us, moderated by Tara Lagu."
        what = "someone else's patch_round description, If-Match their copy"
        response = call_ok(what, patch_round, HTTPStatus.OK, Round, id=panel.id, client=someone_else,
                           body=RoundPatch(description=their_description), if_match=our_etag)
        their_etag = strong_etag(what, response)
        expect_true(f"{what}: a new ETag", their_etag != our_etag, (our_etag, their_etag))
        expect(f"{what}: description", their_description, response.parsed.description)

        our_title = "Learning from our own data: the wards, the numbers, the changes"
        what = "our patch_round title with the stale If-Match"
        problem, response = call_problem_response(what, patch_round, HTTPStatus.PRECONDITION_FAILED, id=panel.id,
                                                  client=client, body=RoundPatch(title=our_title), if_match=our_etag)
        # A 412 carries no representation: its ETag names the current version as the identity
        # representation's tag, whatever coding the client's last answer came in.
        expect(f"{what}: the ETag header names the current version", identity_etag(their_etag),
               response.headers.get("etag"))
        expect_true(f"{what}: the detail names the current ETag", identity_etag(their_etag) in problem.detail,
                    problem.detail)
        what = "our patch_round title with a weak If-Match (a weak tag never matches)"
        call_problem(what, patch_round, HTTPStatus.PRECONDITION_FAILED, id=panel.id, client=client,
                     body=RoundPatch(title=our_title), if_match=f"W/{their_etag}")

        what = "get_round after the refused patches (re-read)"
        response = call_ok(what, get_round, HTTPStatus.OK, Round, id=panel.id, client=client)
        expect(f"{what}: ETag", their_etag, strong_etag(what, response))
        expect(f"{what}: title unchanged, their description kept", (panel.title, their_description),
               (response.parsed.title, response.parsed.description))
        reread = response.parsed

        what = "our patch_round title, If-Match the re-read ETag"
        response = call_ok(what, patch_round, HTTPStatus.OK, Round, id=panel.id, client=client,
                           body=RoundPatch(title=our_title), if_match=their_etag)
        new_etag = strong_etag(what, response)
        expect_true(f"{what}: a new ETag", new_etag not in (our_etag, their_etag), (our_etag, their_etag, new_etag))
        patched = response.parsed
        expect(f"{what}: our title and their description (no lost update)", (our_title, their_description),
               (patched.title, patched.description))
        before, after = reread.to_dict(), patched.to_dict()
        for field in ("title", "updated_at"):
            before.pop(field)
            after.pop(field)
        expect(f"{what}: every other field unchanged", before, after)
        what = "get_round after our retry"
        response = call_ok(what, get_round, HTTPStatus.OK, Round, id=panel.id, client=client)
        expect(f"{what}: the ETag the patch answered", new_etag, strong_etag(what, response))
        expect(f"{what}: same as the patch answered", patched.to_dict(), response.parsed.to_dict())
        panel = patched

    with step("a round takes session feedback from its start: 422 naming round_id before, then the panel is held"):
        what = "create_round_feedback before the panel starts"
        problem = call_problem(what, create_round_feedback, HTTPStatus.UNPROCESSABLE_ENTITY, id=panel.id,
                               client=client,
                               body=RoundSessionFeedbackInput(kind=RoundSessionFeedbackInputKind.SESSION_FEEDBACK,
                                                              rating=5))
        expect_field_error(what, problem, "round_id")
        # The panel is moved to an hour ago, as if it had just been held: inside its window (from its
        # start to the series' feedback_window_days after its end).
        held_starts = started - dt.timedelta(hours=2)
        held_ends = started - dt.timedelta(hours=1)
        what = "patch_round to an hour ago"
        panel = call_ok(what, patch_round, HTTPStatus.OK, Round, id=panel.id, client=client,
                        body=RoundPatch(starts_at=held_starts, ends_at=held_ends)).parsed
        expect(f"{what}: starts_at", held_starts, panel.starts_at)

    feedback: list[Feedback] = []
    with step("submit session feedback on the panel: ratings 5, 4, 3"):
        # The body is a union on `kind`; the generated client has one model per variant. Two ratings
        # go to the round's own endpoint (RoundSessionFeedbackInput: the round is the path's), one
        # to POST /api/v1/feedback (SessionFeedbackInput: round_id is required there), so that
        # both session variants of the document are sent.
        for rating, comment, author, via_round in [
            (5, "Concrete examples from our own wards; more of this please.", "Aubri Drake", True),
            (4, None, None, False),
            (3, "Eight panelists was a lot for an hour.", None, True),
        ]:
            if via_round:
                what = f"create_round_feedback rating={rating}"
                round_body = RoundSessionFeedbackInput(kind=RoundSessionFeedbackInputKind.SESSION_FEEDBACK,
                                                       rating=rating, comment=comment, author_name=author)
                expect(f"{what}: the client leaves round_id out", False, "round_id" in round_body.to_dict())
                response = call_ok(what, create_round_feedback, HTTPStatus.CREATED, Feedback, id=panel.id,
                                   client=client, body=round_body)
            else:
                what = f"create_feedback session_feedback rating={rating}"
                body = SessionFeedbackInput(kind=SessionFeedbackInputKind.SESSION_FEEDBACK, round_id=panel.id,
                                            rating=rating, comment=comment, author_name=author)
                response = call_ok(what, create_feedback, HTTPStatus.CREATED, Feedback, client=client, body=body)
            item = response.parsed
            expect_location(what, response, f"/api/v1/feedback/{item.id}")
            expect(f"{what}: fields", (FeedbackKind.SESSION_FEEDBACK, panel.id, rating, comment, author, None,
                                       FeedbackStatus.NEW),
                   (item.kind, item.round_id, item.rating, item.comment, item.author_name, item.author_email,
                    item.status))
            expect_recent(f"{what}: created_at", item.created_at, started)
            feedback.append(item)

    with step("submit a topic suggestion"):
        what = "create_feedback topic_suggestion"
        body = TopicSuggestionInput(kind=TopicSuggestionInputKind.TOPIC_SUGGESTION,
                                    comment="Sepsis bundle compliance: what do our own data say?",
                                    author_name="Aubri Drake", author_email="aubri.drake@example.org")
        suggestions_before = call_ok("list_feedback kind=topic_suggestion (before)", list_feedback, HTTPStatus.OK,
                                     PageFeedback, client=client, kind=ListFeedbackKind.TOPIC_SUGGESTION,
                                     limit=1).parsed.total
        key = f"scenario-{uuid.uuid4()}"
        response = call_ok(what, create_feedback, HTTPStatus.CREATED, Feedback, client=client, body=body,
                           idempotency_key=key)
        expect(f"{what}: not a replay", None, response.headers.get("idempotency-replayed"))
        first = response
        suggestion = response.parsed
        expect(f"{what}: fields",
               (FeedbackKind.TOPIC_SUGGESTION, None, None, body.comment, "Aubri Drake", "aubri.drake@example.org",
                FeedbackStatus.NEW),
               (suggestion.kind, suggestion.round_id, suggestion.rating, suggestion.comment, suggestion.author_name,
                suggestion.author_email, suggestion.status))
        feedback.append(suggestion)

    with step("retry the suggestion with its Idempotency-Key: the first answer replayed, one record"):
        what = "create_feedback topic_suggestion, retried with the same Idempotency-Key"
        response = call_ok(what, create_feedback, HTTPStatus.CREATED, Feedback, client=client, body=body,
                           idempotency_key=key)
        expect(f"{what}: Idempotency-Replayed", "true", response.headers.get("idempotency-replayed"))
        expect(f"{what}: the same body", raw_json(first), raw_json(response))
        expect(f"{what}: the same Location", first.headers.get("location"), response.headers.get("location"))
        expect(f"{what}: the same ETag", strong_etag(what, first), strong_etag(what, response))
        total = call_ok("list_feedback kind=topic_suggestion (after)", list_feedback, HTTPStatus.OK, PageFeedback,
                        client=client, kind=ListFeedbackKind.TOPIC_SUGGESTION, limit=1).parsed.total
        expect("topic suggestions: one more, not two", suggestions_before + 1, total)

        what = "create_feedback with the same Idempotency-Key and another body"
        other = TopicSuggestionInput(kind=TopicSuggestionInputKind.TOPIC_SUGGESTION, comment="Another topic")
        problem = call_problem(what, create_feedback, HTTPStatus.UNPROCESSABLE_ENTITY, client=client, body=other,
                               idempotency_key=key)
        expect_field_error(what, problem, "Idempotency-Key")
        total = call_ok("list_feedback kind=topic_suggestion (after the refused reuse)", list_feedback, HTTPStatus.OK,
                        PageFeedback, client=client, kind=ListFeedbackKind.TOPIC_SUGGESTION, limit=1).parsed.total
        expect("topic suggestions after the refused reuse of the key", suggestions_before + 1, total)

    with step("list the panel's feedback"):
        page = call_ok("list_round_feedback", list_round_feedback, HTTPStatus.OK, PageFeedback,
                       id=panel.id, client=client).parsed
        expect("list_round_feedback: total", 3, page.total)
        expect("list_round_feedback: ids (newest first)", [f.id for f in reversed(feedback[:3])],
               [f.id for f in page.items])

    with step("the panel's feedback summary: count 3, average 4.0, distribution 0/0/1/1/1"):
        what = "round_feedback_summary"
        summary = call_ok(what, round_feedback_summary, HTTPStatus.OK, FeedbackSummary,
                          id=panel.id, client=client).parsed
        expect(f"{what}: round_id", panel.id, summary.round_id)
        expect(f"{what}: count", 3, summary.count)
        # A JSON number: 4.0 and 4 are the same value on the wire.
        expect_true(f"{what}: average_rating == 4.0",
                    type(summary.average_rating) in (int, float) and summary.average_rating == 4.0,
                    summary.average_rating)
        expect_true(f"{what}: distribution is the generated model",
                    isinstance(summary.distribution, Distribution), summary.distribution)
        expect(f"{what}: distribution", {"1": 0, "2": 0, "3": 1, "4": 1, "5": 1}, summary.distribution.to_dict())
        summary = call_ok(f"{what} (talk, no ratings)", round_feedback_summary, HTTPStatus.OK, FeedbackSummary,
                          id=talk.id, client=client).parsed
        expect(f"{what} (talk): count, average, distribution",
               (0, None, {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}),
               (summary.count, summary.average_rating, summary.distribution.to_dict()))

    with step("triage the suggestion to accepted"):
        what = "triage_feedback accepted"
        triaged = call_ok(what, triage_feedback, HTTPStatus.OK, Feedback, id=suggestion.id, client=client,
                          body=FeedbackTriagePatch(status=FeedbackStatus.ACCEPTED)).parsed
        expect(f"{what}: status", FeedbackStatus.ACCEPTED, triaged.status)
        before, after = suggestion.to_dict(), triaged.to_dict()
        for field in ("status", "updated_at"):
            before.pop(field)
            after.pop(field)
        expect(f"{what}: what the author wrote is unchanged", before, after)
        fetched = call_ok("get_feedback", get_feedback, HTTPStatus.OK, Feedback, id=suggestion.id,
                          client=client).parsed
        expect("get_feedback: status", FeedbackStatus.ACCEPTED, fetched.status)
        page = call_ok("list_feedback kind=topic_suggestion status=accepted", list_feedback, HTTPStatus.OK,
                       PageFeedback, client=client, kind=ListFeedbackKind.TOPIC_SUGGESTION,
                       status=ListFeedbackStatus.ACCEPTED, limit=100).parsed
        expect_true("list_feedback kind=topic_suggestion status=accepted: has the suggestion",
                    suggestion.id in [f.id for f in page.items] or page.total > 100, [f.id for f in page.items])
        expect_true("list_feedback kind=topic_suggestion status=accepted: only such items",
                    all(f.kind == FeedbackKind.TOPIC_SUGGESTION and f.status == FeedbackStatus.ACCEPTED
                        for f in page.items), [(f.kind, f.status) for f in page.items])

    with step("validation errors answer 422 problems naming the field"):
        what = "create_round ends before it starts"
        problem = call_problem(what, create_round, HTTPStatus.UNPROCESSABLE_ENTITY, client=client, body=RoundInput(
            starts_at=panel_ends, ends_at=panel_starts, location=LOCATION,
            speakers=[SpeakerSlot(speaker_id=speakers["Howard Goldberg"].id)]))
        expect_field_error(what, problem, "ends_at")
        page = call_ok("list_rounds speaker_id=Goldberg after the refused round", list_rounds, HTTPStatus.OK,
                       PageRound, client=client, speaker_id=speakers["Howard Goldberg"].id).parsed
        expect("the refused round was not created: Goldberg's rounds", [panel.id], [r.id for r in page.items])

        what = "create_speaker with a bad email"
        problem = call_problem(what, create_speaker, HTTPStatus.UNPROCESSABLE_ENTITY, client=client,
                               body=SpeakerInput(full_name="Mihaela Stefan", email="not-an-email"))
        expect_field_error(what, problem, "email")

        what = "create_round_feedback with a rating of 6"
        problem = call_problem(what, create_round_feedback, HTTPStatus.UNPROCESSABLE_ENTITY, id=panel.id,
                               client=client,
                               body=RoundSessionFeedbackInput(kind=RoundSessionFeedbackInputKind.SESSION_FEEDBACK,
                                                              rating=6))
        expect_field_error(what, problem, "rating")

        # A variant of the union is checked by its own rules: a topic suggestion needs a comment
        # with something in it.
        what = "create_round_feedback topic_suggestion with a blank comment"
        problem = call_problem(what, create_round_feedback, HTTPStatus.UNPROCESSABLE_ENTITY, id=panel.id,
                               client=client,
                               body=TopicSuggestionInput(kind=TopicSuggestionInputKind.TOPIC_SUGGESTION, comment="   "))
        expect_field_error(what, problem, "comment")
        page = call_ok("list_round_feedback after the refused feedback", list_round_feedback, HTTPStatus.OK,
                       PageFeedback, id=panel.id, client=client).parsed
        expect("the refused feedback was not stored: the panel's feedback count", 3, page.total)

    with step("a round with feedback cannot be deleted: 409"):
        call_problem("delete_round with feedback", delete_round, HTTPStatus.CONFLICT, id=panel.id, client=client)
        call_ok("get_round after the refused delete", get_round, HTTPStatus.OK, Round, id=panel.id, client=client)

    def delete_and_gone(what: str, delete: Any, get: Any, record_id: int) -> None:
        call_ok(f"{what} {record_id}", delete, HTTPStatus.NO_CONTENT, None, id=record_id, client=client)
        call_problem(f"get after {what} {record_id}", get, HTTPStatus.NOT_FOUND, id=record_id, client=client)

    with step("delete the feedback: 204, then 404"):
        for item in feedback:
            delete_and_gone("delete_feedback", delete_feedback, get_feedback, item.id)
        call_problem("delete_feedback again", delete_feedback, HTTPStatus.NOT_FOUND, id=feedback[0].id,
                     client=client)
        summary = call_ok("round_feedback_summary after deleting", round_feedback_summary, HTTPStatus.OK,
                          FeedbackSummary, id=panel.id, client=client).parsed
        expect("summary after deleting: count, average", (0, None), (summary.count, summary.average_rating))

    with step("a speaker on a round cannot be deleted: 409"):
        call_problem("delete_speaker on a round", delete_speaker, HTTPStatus.CONFLICT, id=speakers["Tara Lagu"].id,
                     client=client)

    with step("delete the rounds: 204, then 404"):
        for item in rounds.values():
            delete_and_gone("delete_round", delete_round, get_round, item.id)

    with step("delete the speakers: 204, then 404"):
        for item in speakers.values():
            delete_and_gone("delete_speaker", delete_speaker, get_speaker, item.id)

    with step("delete the departments: 204, then 404"):
        for item in departments.values():
            delete_and_gone("delete_department", delete_department, get_department, item.id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True, help="the server's root, such as http://127.0.0.1:8080")
    parser.add_argument("--suffix", default="",
                        help="appended to the department names, for a database that already has them")
    args = parser.parse_args(argv)
    token = os.environ.get("LHS_API_TOKEN") or None
    try:
        run(args.base_url.rstrip("/"), args.suffix, token)
    except ScenarioFailure as failure:
        print(f"FAIL {CURRENT_STEP}\n  {failure}\nscenario FAILED", file=sys.stderr, flush=True)
        return 1
    except Exception:
        print(f"FAIL {CURRENT_STEP}: an unexpected error", file=sys.stderr, flush=True)
        traceback.print_exc()
        print("scenario FAILED", file=sys.stderr, flush=True)
        return 2
    print("scenario passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
