// What an intranet front-end writes against the LHS Rounds API: the next rounds, one line each.
// The types come from the committed OpenAPI document, generated at check time (not committed):
//   npx openapi-typescript ../../../openapi/openapi.json -o schema.d.ts && npx tsc -p .
import type { components, operations } from "./schema";

export type Round = components["schemas"]["Round"];
export type Problem = components["schemas"]["Problem"];
export type ListRoundsQuery = operations["list_rounds"]["parameters"]["query"];
// The body of POST /api/v1/feedback: a union discriminated by `kind`.
export type FeedbackInput = components["schemas"]["FeedbackInput"];
type CreateFeedbackBody = operations["create_feedback"]["requestBody"]["content"]["application/json"];
type PageOfRounds = operations["list_rounds"]["responses"][200]["content"]["application/json"];

const TIME_ZONE = "America/New_York";

/** The rounds that have not ended yet, soonest first. */
export async function fetchUpcomingRounds(baseUrl: string, limit = 20): Promise<Round[]> {
  const query = { when: "upcoming", limit } satisfies ListRoundsQuery;
  const url = new URL("/api/v1/rounds", baseUrl);
  for (const [name, value] of Object.entries(query)) {
    url.searchParams.set(name, String(value));
  }
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) {
    const problem = (await response.json()) as Problem;
    const fields = (problem.errors ?? []).map((e) => `${e.field}: ${e.message}`).join("; ");
    throw new Error(`${problem.status} ${problem.title}: ${problem.detail}${fields ? ` (${fields})` : ""}`);
  }
  const page = (await response.json()) as PageOfRounds;
  return page.items;
}

const dayFormat = new Intl.DateTimeFormat("en-US", {
  timeZone: TIME_ZONE,
  weekday: "short",
  month: "short",
  day: "numeric",
  year: "numeric",
});
const timeFormat = new Intl.DateTimeFormat("en-US", {
  timeZone: TIME_ZONE,
  hour: "numeric",
  minute: "2-digit",
  hour12: true,
});

// Newer ICU data puts a narrow no-break space before AM/PM; the schedule prints a plain space.
const time = (at: Date): string => timeFormat.format(at).replace(/\u202f/g, " ");

/** "Thu, Jan 21, 2027, 12:00 PM – 1:00 PM · BMC – MassMutual 5 · <topic> · <speakers>", in New York time. */
export function formatRound(r: Round): string {
  const starts = new Date(r.starts_at);
  const ends = new Date(r.ends_at);
  const topic = r.title?.trim() ? r.title : "Topic to be announced";
  const speakers = r.speakers.map((s) => s.display_name).join("; ");
  return [
    `${dayFormat.format(starts)}, ${time(starts)} – ${time(ends)}`,
    r.location,
    topic,
    speakers || "Speakers to be announced",
  ].join(" · ");
}

/** One line for an organiser's inbox. `kind` narrows the union: only session feedback has a
 * `rating` (and a `round_id` it must have), the other kinds have a `comment` that is never absent. */
export function summarizeFeedback(f: FeedbackInput): string {
  const by = f.author_name?.trim() ? ` (${f.author_name})` : "";
  switch (f.kind) {
    case "session_feedback": {
      const stars = "★".repeat(f.rating) + "☆".repeat(5 - f.rating);
      const comment = f.comment?.trim() ? `: ${f.comment}` : "";
      return `Round ${f.round_id} rated ${stars}${comment}${by}`;
    }
    case "topic_suggestion":
      return `Topic suggested${f.round_id != null ? ` for round ${f.round_id}` : ""}: ${f.comment}${by}`;
    case "general":
      return `Comment: ${f.comment}${by}`;
    default: {
      // Exhaustive: a kind added to the document and not handled here fails tsc.
      const unhandled: never = f;
      return unhandled;
    }
  }
}

/** A session rating, sent as the body of POST /api/v1/feedback. */
export async function rateRound(baseUrl: string, token: string, roundId: number, rating: 1 | 2 | 3 | 4 | 5,
                                comment?: string): Promise<void> {
  const body: CreateFeedbackBody = {
    kind: "session_feedback",
    round_id: roundId,
    rating,
    ...(comment === undefined ? {} : { comment }),
  };
  const response = await fetch(new URL("/api/v1/feedback", baseUrl), {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  if (!response.ok) {
    const problem = (await response.json()) as Problem;
    throw new Error(`${problem.status} ${problem.title}: ${problem.detail}`);
  }
}

// The generated types catch a front-end's mistakes: tsc fails if any of these lines type-checks.
export const notAWindow: ListRoundsQuery = {
  // @ts-expect-error: `when` is "upcoming" or "past", nothing else
  when: "later",
};

export function titleOf(r: Round): string {
  // @ts-expect-error: a round's title may be absent or null until the topic is known
  const title: string = r.title;
  return title;
}

export function ratingOf(f: FeedbackInput): number {
  // @ts-expect-error: `rating` exists on session feedback only; narrow on `kind` first
  return f.rating;
}

// @ts-expect-error: a topic suggestion requires a `comment`
export const suggestionWithoutComment: FeedbackInput = {
  kind: "topic_suggestion",
  round_id: 3,
};

export const suggestionWithRating: FeedbackInput = {
  kind: "topic_suggestion",
  comment: "Sepsis bundles",
  // @ts-expect-error: only session feedback carries a rating
  rating: 4,
};

// @ts-expect-error: session feedback sent to /api/v1/feedback names its round
export const sessionFeedbackWithoutRound: FeedbackInput = {
  kind: "session_feedback",
  rating: 4,
};
