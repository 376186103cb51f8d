//! What the pages print, decided without a database or HTTP: a round's line in the page's own
//! format ("Thursday, July 18, 2019, 12–1pm, @ BMC – MassMutual 6: Tara Lagu, MD, MPH, on
//! “How can we use patient comments to improve care?”"), and the series' description from
//! Markdown to HTML that is safe to put in a page.

use chrono::{DateTime, FixedOffset, Timelike};

/// "Thursday, July 18, 2019": the day of `start`, in the zone its offset is in.
pub fn day(start: DateTime<FixedOffset>) -> String {
    start.format("%A, %B %-d, %Y").to_string()
}

/// "12–1pm", "11:30am–12:30pm", "9–10am": the hours of a round as the page writes them, the
/// half of the day said once when both ends share it. A round that ends on a later day says
/// that day too.
pub fn hours(start: DateTime<FixedOffset>, end: DateTime<FixedOffset>) -> String {
    let (start_pm, start_h) = start.hour12();
    let (end_pm, end_h) = end.hour12();
    let clock = |h: u32, m: u32| match m {
        0 => h.to_string(),
        m => format!("{h}:{m:02}"),
    };
    let half = |pm: bool| if pm { "pm" } else { "am" };
    let first = clock(start_h, start.minute());
    let last = clock(end_h, end.minute());
    if end.date_naive() != start.date_naive() {
        return format!(
            "{first}{}–{}, {last}{}",
            half(start_pm),
            end.format("%A, %B %-d"),
            half(end_pm)
        );
    }
    if start_pm == end_pm {
        format!("{first}–{last}{}", half(end_pm))
    } else {
        format!("{first}{}–{last}{}", half(start_pm), half(end_pm))
    }
}

/// What follows the room on a round's line: the speakers (each with their credentials, "; "
/// between them) and the title, as the page writes them: ": Tara Lagu, MD, MPH, on “…”", or
/// ": SWOT Analysis" with no speaker, or nothing at all while neither is known.
pub fn topic(speakers: &[&str], title: Option<&str>) -> String {
    let title = title.map(str::trim).filter(|t| !t.is_empty());
    match (speakers.is_empty(), title) {
        (true, None) => String::new(),
        (true, Some(title)) => format!(": {title}"),
        (false, None) => format!(": {}", speakers.join("; ")),
        (false, Some(title)) => format!(": {}, on “{title}”", speakers.join("; ")),
    }
}

/// The whole line of a round, as plain text (the page escapes it).
pub fn line(
    start: DateTime<FixedOffset>,
    end: DateTime<FixedOffset>,
    location: &str,
    speakers: &[&str],
    title: Option<&str>,
) -> String {
    format!(
        "{}, {}, @ {location}{}",
        day(start),
        hours(start, end),
        topic(speakers, title)
    )
}

/// The series' description: Markdown (CommonMark with tables and strikethrough) rendered with
/// pulldown-cmark, then cleaned by ammonia, which keeps only the tags and attributes of text
/// (no `<script>`, no `style`, no event handlers, no `javascript:` links) and marks links
/// `rel="noopener noreferrer"`. Raw HTML in the Markdown goes through the same cleaning.
pub fn markdown(text: &str) -> String {
    use pulldown_cmark::{Options, Parser};
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let mut html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, Parser::new_ext(text, options));
    // The page's own title is its one `h1`: a description's headings start at `h2`.
    ammonia::Builder::default()
        .rm_tags(["h1", "img"])
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .clean(&html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(text).expect("a valid timestamp")
    }

    #[test]
    fn a_round_reads_as_the_page_writes_it() {
        assert_eq!(
            line(
                at("2019-07-18T12:00:00-04:00"),
                at("2019-07-18T13:00:00-04:00"),
                "BMC – MassMutual 6",
                &["Tara Lagu, MD, MPH"],
                Some("How can we use patient comments to improve care?"),
            ),
            "Thursday, July 18, 2019, 12–1pm, @ BMC – MassMutual 6: Tara Lagu, MD, MPH, on \
             “How can we use patient comments to improve care?”"
        );
    }

    #[test]
    fn hours_say_the_half_of_the_day_once_when_both_ends_share_it() {
        let day = |h: &str| at(&format!("2019-07-18T{h}-04:00"));
        assert_eq!(hours(day("09:00:00"), day("10:00:00")), "9–10am");
        assert_eq!(hours(day("11:30:00"), day("12:30:00")), "11:30am–12:30pm");
        assert_eq!(hours(day("12:00:00"), day("13:00:00")), "12–1pm");
        assert_eq!(hours(day("16:15:00"), day("17:45:00")), "4:15–5:45pm");
        assert_eq!(
            hours(day("23:00:00"), at("2019-07-19T01:00:00-04:00")),
            "11pm–Friday, July 19, 1am"
        );
    }

    #[test]
    fn the_topic_is_the_speakers_and_the_title_as_far_as_they_are_known() {
        assert_eq!(topic(&[], None), "");
        assert_eq!(topic(&[], Some("SWOT Analysis")), ": SWOT Analysis");
        assert_eq!(
            topic(&["A, MD", "B, PhD"], Some("T")),
            ": A, MD; B, PhD, on “T”"
        );
        assert_eq!(topic(&["A, MD"], None), ": A, MD");
    }

    #[test]
    fn a_script_in_a_description_comes_out_inert() {
        let html = markdown(
            "Hello <script>alert(1)</script> **bold** [x](javascript:alert(2)) \
             <img src=x onerror=alert(3)> <a href=\"https://example.org\" onclick=\"f()\">y</a>",
        );
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("onclick"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(html.contains("href=\"https://example.org\""), "{html}");
    }

    #[test]
    fn a_description_s_headings_sit_under_the_page_s_title() {
        let html = markdown("# Top\n\n## What is a Learning Health System?\n\ntext");
        assert!(!html.contains("<h1"), "{html}");
        assert!(
            html.contains("<h2>What is a Learning Health System?</h2>"),
            "{html}"
        );
    }
}
