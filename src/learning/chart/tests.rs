use super::*;
use crate::learning::runchart::tests::{month, points};
use crate::learning::runchart::{run_chart, Baseline, MeasureSettings, PhaseStart};

fn settings() -> MeasureSettings {
    MeasureSettings {
        frequency: Frequency::Month,
        improvement_direction: ImprovementDirection::Increase,
        target: Some(8.5),
        baseline: None,
        phases: Vec::new(),
    }
}

/// Twelve points alternating around 5, then six above: one shift.
fn shifted() -> RunChart {
    let mut values = [9.0, 1.0].repeat(6);
    values.extend_from_slice(&[9.0; 6]);
    let mut data = points(&values);
    data[12].pdsa_cycle_id = Some(3);
    data[12].note = Some("Comment cards".into());
    run_chart(&settings(), &data, RuleSet::Ihi).unwrap()
}

fn parse(svg: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(svg).unwrap()
}

#[test]
fn the_svg_is_well_formed_and_names_itself_for_screen_readers() {
    let svg = render_svg(&shifted(), &ChartMeta::new("Would recommend", "%")).unwrap();
    let doc = parse(&svg);
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    assert_eq!(root.attribute("width"), Some("800"));
    assert_eq!(root.attribute("height"), Some("400"));
    assert_eq!(root.attribute("role"), Some("img"));
    assert_eq!(
        root.attribute("aria-labelledby"),
        Some("run-chart-title run-chart-desc")
    );
    let mut children = root.children().filter(|n| n.is_element());
    let title = children.next().unwrap();
    let desc = children.next().unwrap();
    assert_eq!(title.tag_name().name(), "title");
    assert_eq!(title.attribute("id"), Some("run-chart-title"));
    assert_eq!(title.text(), Some("Would recommend"));
    assert_eq!(desc.tag_name().name(), "desc");
    assert_eq!(desc.attribute("id"), Some("run-chart-desc"));
    assert!(desc
        .text()
        .unwrap()
        .starts_with("Run chart of Would recommend (%)"));
}

#[test]
fn the_description_gives_the_points_the_median_and_every_signal_in_words() {
    let desc = describe(&shifted(), &ChartMeta::new("Would recommend", "%"));
    for expected in [
        "18 points from Jan 2023 to Jun 2024.",
        "Higher is better.",
        "Target: 8.5.",
        "IHI",
        "Median 5, from the baseline Jan 2023 to Dec 2023.",
        "Signals: a shift of 6 points above the median from Jan 2024 to Jun 2024 (favourable).",
        "Notes: Jan 2024: PDSA cycle 3, Comment cards.",
    ] {
        assert!(desc.contains(expected), "{expected:?} in {desc:?}");
    }
}

#[test]
fn the_description_names_runs_signals_and_phases_that_cannot_be_read() {
    let mut s = settings();
    s.baseline = Some(Baseline::Range {
        from: month(0),
        to: month(19),
    });
    s.phases = vec![PhaseStart {
        start_period: month(20),
        reason: "new form".into(),
    }];
    let mut values = vec![1.0; 10];
    values.extend_from_slice(&[9.0; 10]);
    values.extend_from_slice(&[4.0, 5.0, 6.0]);
    let chart = run_chart(&s, &points(&values), RuleSet::Anhoej).unwrap();
    let desc = describe(&chart, &ChartMeta::new("M", "u"));
    assert!(desc.contains("Anhøj"), "{desc}");
    assert!(desc.contains("too few crossings of the median: 1, where fewer than 6 is unusual"));
    assert!(desc.contains("an unusually long run of 10 points below the median"));
    assert!(desc.contains("(unfavourable)"));
    assert!(
        desc.contains("Phase 2, from Sep 2024 (new form): median 5"),
        "{desc}"
    );
    assert!(desc.contains("Too few data to apply the rules"));
}

#[test]
fn text_from_people_is_escaped_and_stripped_of_characters_xml_forbids() {
    let mut data = points(&[9.0, 1.0].repeat(6));
    data[3].note = Some("</text><script>alert(1)</script> & \u{1}more".into());
    let mut s = settings();
    s.phases = vec![PhaseStart {
        start_period: month(6),
        reason: "A & B <c>".into(),
    }];
    let chart = run_chart(&s, &data, RuleSet::Ihi).unwrap();
    let mut meta = ChartMeta::new("Falls <per> 1,000 & \"more\" 'x'\u{0}", "<%>");
    meta.id_prefix = "chart 2\"><x".into();
    let svg = render_svg(&chart, &meta).unwrap();
    let doc = parse(&svg);
    assert!(doc.descendants().all(|n| n.tag_name().name() != "script"));
    let root = doc.root_element();
    assert_eq!(
        root.attribute("aria-labelledby"),
        Some("chart2x-title chart2x-desc")
    );
    let title = root.children().find(|n| n.has_tag_name("title")).unwrap();
    assert_eq!(title.text(), Some("Falls <per> 1,000 & \"more\" 'x'"));
    let desc = root
        .children()
        .find(|n| n.has_tag_name("desc"))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        desc.contains("</text><script>alert(1)</script> & more"),
        "{desc}"
    );
    assert!(desc.contains("(A & B <c>)"));
}

#[test]
fn signal_points_are_orange_triangles_and_the_others_blue_circles() {
    let chart = shifted();
    let svg = render_svg(&chart, &ChartMeta::new("M", "u")).unwrap();
    let doc = parse(&svg);
    let filled = |tag: &str, fill: &str| {
        doc.descendants()
            .filter(|n| n.has_tag_name(tag) && n.attribute("fill") == Some(fill))
            .count()
    };
    // Six points in the shift, and one triangle in the key.
    assert_eq!(filled("polygon", "#E66100"), 6 + 1);
    // Twelve baseline points, and one circle in the key.
    assert_eq!(filled("circle", "#1F5FA8"), 12 + 1);
}

#[test]
fn the_axes_and_key_carry_the_unit_the_periods_and_the_target() {
    let svg = render_svg(&shifted(), &ChartMeta::new("M", "falls per 1,000 bed-days")).unwrap();
    let doc = parse(&svg);
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    for expected in [
        "falls per 1,000 bed-days",
        "Month",
        "Jan 2023",
        "Target 8.5",
        "median 5",
    ] {
        assert!(
            texts.iter().any(|t| t == expected),
            "{expected:?} in {texts:?}"
        );
    }
}

#[test]
fn an_empty_chart_is_still_a_well_formed_picture() {
    let chart = run_chart(&settings(), &[], RuleSet::Ihi).unwrap();
    let svg = render_svg(&chart, &ChartMeta::new("Nothing yet", "")).unwrap();
    let doc = parse(&svg);
    assert!(svg.contains("No data yet"));
    let desc = doc.descendants().find(|n| n.has_tag_name("desc")).unwrap();
    assert!(desc.text().unwrap().contains("No points yet."));
}

#[test]
fn a_chart_too_small_to_read_or_too_large_to_draw_is_refused() {
    let mut meta = ChartMeta::new("M", "u");
    meta.width = 100;
    assert_eq!(
        render_svg(&shifted(), &meta),
        Err(ChartError::Size(100, 400))
    );
    meta.width = u32::MAX;
    assert_eq!(
        render_svg(&shifted(), &meta),
        Err(ChartError::Size(u32::MAX, 400))
    );
}

#[test]
fn numbers_are_written_as_people_write_them() {
    assert_eq!(format_number(72.5), "72.5");
    assert_eq!(format_number(5.0), "5");
    assert_eq!(format_number(0.1 + 0.2), "0.3");
    assert_eq!(format_number(-0.0001), "0");
    assert_eq!(format_number(1234.56789), "1234.568");
}

#[test]
fn long_labels_are_cut_on_characters_not_bytes() {
    assert_eq!(label_text("Ærø ærø ærø ærø ærø", 6), "Ærø æ…");
    assert_eq!(label_text("a\nb\t c", 10), "a b c");
}

#[test]
fn values_at_the_edge_of_f64_are_refused_rather_than_drawn_wrong() {
    let chart = run_chart(&settings(), &points(&[f64::MAX, -f64::MAX]), RuleSet::Ihi).unwrap();
    assert!(matches!(
        render_svg(&chart, &ChartMeta::new("M", "u")),
        Err(ChartError::Draw(_))
    ));
}
