use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::Datelike;
use diesel::connection::{Connection, InstrumentationEvent};
use lhs_rounds::db::{self, Database};
use lhs_rounds::pagination::Paging;
use lhs_rounds::resource::Resource;
use lhs_rounds::rounds::{RoundFilter, Rounds};
use serde_json::{json, Value};

use crate::helpers::{fresh_database, id_of, Backend, TestApp};

on_both_backends!(
    listing_rounds_takes_the_same_number_of_queries_whatever_the_page_size,
    fifty_concurrent_writes_all_succeed,
    the_demo_schedule_loads_once_with_its_panel_in_order,
);

async fn listing_rounds_takes_the_same_number_of_queries_whatever_the_page_size(app: TestApp) {
    let speakers = [app.speaker("A", &["MD"]).await, app.speaker("B", &[]).await];
    let department = app.department("Clinical Informatics").await;
    for day in 1..=30 {
        app.round(
            &format!("2027-01-{day:02}"),
            json!({"speakers": [{"speaker_id": speakers[0]}, {"speaker_id": speakers[1]}], "department_ids": [department]}),
        )
        .await;
    }
    let database = app.database.clone();

    let counts = tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().expect("a connection");
        let queries = Arc::new(AtomicUsize::new(0));
        let counter = queries.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if matches!(event, InstrumentationEvent::StartQuery { .. }) {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let mut counts = Vec::new();
        for limit in [1, 10, 30] {
            queries.store(0, Ordering::SeqCst);
            let page = Rounds::list(&mut conn, &RoundFilter::default(), Paging::new(limit, 0))
                .expect("a page")
                .page;
            assert_eq!(page.items.len() as i64, limit);
            assert!(page
                .items
                .iter()
                .all(|r| r.speakers.0.len() == 2 && r.departments.0.len() == 1));
            counts.push(queries.load(Ordering::SeqCst));
        }
        counts
    })
    .await
    .unwrap();

    assert_eq!(
        counts,
        vec![5, 5, 5],
        "count, page, speakers, departments, the series' time zone"
    );
}

async fn fifty_concurrent_writes_all_succeed(app: TestApp) {
    let round = id_of(&app.round("2019-04-25", json!({})).await);
    let app = Arc::new(app);

    let writes: Vec<_> = (0..50)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let body = if i % 2 == 0 {
                    json!({"kind": "session_feedback", "round_id": round, "rating": 1 + i % 5})
                } else {
                    json!({"full_name": format!("Speaker {i}"), "credentials": ["MD"]})
                };
                let path = if i % 2 == 0 {
                    "/api/v1/feedback"
                } else {
                    "/api/v1/speakers"
                };
                app.post(path, &body).await.status().as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for write in writes {
        statuses.push(write.await.unwrap());
    }

    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    assert_eq!(app.get_ok("/api/v1/feedback").await["total"], 25);
    assert_eq!(app.get_ok("/api/v1/speakers").await["total"], 25);
}

async fn the_demo_schedule_loads_once_with_its_panel_in_order(app: TestApp) {
    let database = app.database.clone();
    let reports = tokio::task::spawn_blocking(move || {
        let mut conn = database.connection().expect("a connection");
        let first = lhs_rounds::demo::seed(&mut conn).expect("first load");
        let second = lhs_rounds::demo::seed(&mut conn).expect("second load");
        (first.to_string(), second.to_string())
    })
    .await
    .unwrap();
    assert_eq!(
        reports.0,
        "described the series, added 5 departments, 8 speakers, 13 rounds (3 of them \
         upcoming, generated from the series' defaults)"
    );
    assert_eq!(
        reports.1,
        "added 0 departments, 0 speakers, 0 rounds (0 of them upcoming, generated from the \
         series' defaults)"
    );

    let past = app.get_ok("/api/v1/rounds?when=past&limit=100").await;
    assert_eq!(past["total"], 10);
    let first_round = &past["items"][9];
    assert_eq!(first_round["starts_at"], "2019-01-17T17:00:00Z", "noon EST");
    assert_eq!(first_round["starts_at_local"], "2019-01-17T12:00:00-05:00");
    assert_eq!(first_round["location"], "3601 Main St, PVLSI");
    let july = &past["items"][4];
    assert_eq!(july["starts_at"], "2019-07-18T16:00:00Z", "noon EDT");
    assert_eq!(july["starts_at_local"], "2019-07-18T12:00:00-04:00");
    assert_eq!(july["ends_at_local"], "2019-07-18T13:00:00-04:00");
    assert_eq!(july["title"], Value::Null);

    // Like any write, the demo data is in the change log: 1 series, 5 + 8 + 13 records.
    let audit = app.get_ok("/api/v1/audit?limit=100").await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 27, "{audit}");
    assert!(entries.iter().all(|e| e["actor"] == "demo"));
    let feed = app.get_ok("/api/v1/changes?after=0&limit=1000").await;
    assert_eq!(feed["items"].as_array().unwrap().len(), 27);

    let upcoming = app.get_ok("/api/v1/rounds?when=upcoming").await;
    assert_eq!(upcoming["total"], 3, "the next three, generated");
    for round in upcoming["items"].as_array().unwrap() {
        let local = round["starts_at_local"].as_str().unwrap();
        assert!(local.contains("T12:00:00-0"), "noon in New York: {local}");
        let date = chrono::NaiveDate::parse_from_str(&local[..10], "%Y-%m-%d").unwrap();
        assert_eq!(date.weekday(), chrono::Weekday::Thu, "{local}");
        assert_eq!(round["title"], Value::Null, "topic to be announced");
        assert_eq!(round["location"], "BMC – MassMutual 5");
    }
    let series = app.get_ok("/api/v1/series").await;
    assert_eq!(series["name"], "Learning Health System Rounds");
    assert_eq!(series["timezone"], "America/New_York");
    assert_eq!(series["contacts"][0]["name"], "Dr. Mihaela Stefan");
    let panel = &past["items"][8];
    let names: Vec<&str> = panel["speakers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "Howard Goldberg, MD",
            "Paul Visintainer, PhD",
            "Sandeep Muddasani",
            "Doug Salvador, MD, MPH",
            "Peter Lindenauer, MD, MSc",
            "Lauren Westafer, DO, MPH",
            "Tara Lagu, MD, MPH",
            "Quinn Pack, MD, MSc"
        ]
    );
    assert_eq!(
        app.get_ok("/api/v1/speakers").await["total"],
        8,
        "each person once"
    );
    let lagu = app.get_ok("/api/v1/speakers?q=lagu").await;
    let lagu_rounds = app
        .get_ok(&format!(
            "/api/v1/speakers/{}/rounds",
            lagu["items"][0]["id"]
        ))
        .await;
    assert_eq!(lagu_rounds["total"], 2);
}

#[test]
fn migrations_go_down_and_up_again_on_sqlite() {
    migrations_go_down_and_up_again(Backend::Sqlite);
}

#[test]
fn migrations_go_down_and_up_again_on_postgres() {
    migrations_go_down_and_up_again(Backend::Postgres);
}

fn migrations_go_down_and_up_again(backend: Backend) {
    let Some((url, _dir)) = fresh_database(backend) else {
        return;
    };
    let database = Database::open(&url, 1).expect("open and migrate");
    let mut conn = database.connection().expect("a connection");

    db::revert_all_migrations(&mut conn).expect("every migration goes down");
    let applied = db::run_migrations(&mut conn).expect("and up again");

    assert!(!applied.is_empty());
    assert!(db::run_migrations(&mut conn)
        .expect("idempotent")
        .is_empty());
    lhs_rounds::demo::seed(&mut conn).expect("the schema works after the round trip");
}
