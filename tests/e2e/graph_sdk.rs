//! The Graph test double kept honest: Microsoft's own Python SDK (msgraph-sdk with
//! azure-identity, pinned in scripts/deps.sh) runs against it, with TLS verified against the
//! lab CA, and must accept every answer: create, read, update and delete a user and a group,
//! members by `$ref` and `members@odata.bind`, a manager, a `$batch` of 20, a paged list, a
//! delta round with `@removed`, and writes past the double's budget that the SDK's own retry
//! handler carries through the 429s. What the SDK did is then checked in the double's state.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value as Json;

use crate::support::Must;
use crate::support::lab::graph::{self, Budget, Kind, Options};
use crate::support::lab::{TOOL_LIMIT, try_run};

/// The SDK's venv python: `BRIDGEHEAD_GRAPH_SDK_PYTHON` (scripts/test.sh sets it), else the
/// venv scripts/test.sh makes under target/.
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("BRIDGEHEAD_GRAPH_SDK_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/graph-sdk-venv/bin/python");
    assert!(
        venv.is_file(),
        "Microsoft's Graph SDK is not installed: run `bash scripts/test.sh --deps-only` (it \
         installs msgraph-sdk into target/graph-sdk-venv), or set BRIDGEHEAD_GRAPH_SDK_PYTHON"
    );
    venv
}

#[test]
fn graph_sdk_accepts_the_double() {
    // 24 writes per 3 s: the script's setup and its batch (each in a window of its own) stay
    // under it, its 40 updates in a row do not.
    let double = graph::start_with(Options {
        budget: Some(Budget {
            writes: 24,
            window: Duration::from_secs(3),
        }),
        ..Options::default()
    });
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/lab/graph_sdk_check.py");
    let ca = double.ca_file.display().to_string();
    let out = try_run(
        Command::new(python())
            .arg(&script)
            .env("GRAPH_BASE", &double.base)
            .env("GRAPH_TENANT", &double.tenant_id)
            .env("GRAPH_CLIENT_ID", &double.client_id)
            .env("GRAPH_CLIENT_SECRET", &double.client_secret)
            .env("GRAPH_THROTTLE_WRITES", "40")
            .env("GRAPH_BUDGET_WINDOW", "3")
            .env("REQUESTS_CA_BUNDLE", &ca)
            .env("SSL_CERT_FILE", &ca)
            .env("PYTHONUNBUFFERED", "1"),
        TOOL_LIMIT,
    )
    .must("running the SDK script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let log: Vec<String> = double
            .log()
            .iter()
            .rev()
            .take(30)
            .map(|l| format!("{} {} -> {}", l.method, l.target, l.status))
            .collect();
        panic!(
            "the SDK refused the double ({}):\n{stderr}\n{stdout}\nthe double's last requests, newest first:\n{}",
            out.status,
            log.join("\n")
        );
    }
    let result: Json = serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))
        .must("the script's JSON line");

    // What the SDK did, in the double's own state.
    let user = result["user"].as_str().must("user id");
    let group = result["group"].as_str().must("group id");
    double.with(|d| {
        let u = &d.objects[user];
        assert!(u.deleted, "the user was deleted");
        assert_eq!(
            u.text("officeLocation"),
            Some("Room 39"),
            "the last throttled update"
        );
        assert_eq!(
            u.manager.as_deref(),
            result["manager"].as_str(),
            "the manager set"
        );
        assert!(d.objects[group].deleted, "the group was deleted");
        let live = d
            .objects
            .values()
            .filter(|o| o.kind == Kind::User && !o.deleted)
            .count();
        assert_eq!(live, 21, "bob and the 20 batched users remain");
        assert!(d.throttled > 0, "the budget threw 429s: {}", d.throttled);
        assert!(
            d.peak_window <= 24,
            "never more than the budget: {}",
            d.peak_window
        );
        // Every one of the 40 updates landed once: 429s are refused before they act.
        let patches = d
            .log
            .iter()
            .filter(|l| l.method == "PATCH" && l.target.contains(user) && l.status == 204)
            .count();
        assert_eq!(patches, 41, "one jobTitle PATCH and the 40 throttled ones");
        let batched = d.log.iter().filter(|l| l.in_batch).count();
        assert_eq!(batched, 20, "the $batch's inner requests");
    });
    assert!(
        result["conflict"]
            .as_str()
            .is_some_and(|m| m.contains("userPrincipalName")),
        "{result}"
    );
    assert_eq!(result["pages"], 3);
}
