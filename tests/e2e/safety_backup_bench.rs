//! Benchmark: how long `bridgehead backup` takes for a state file holding 100,000 users
//! (an LDIF source of 100,000 people synced into an LDIF target: 100,000 metaverse and
//! 200,000 connector-space objects). Prints the figure; run with
//! `cargo test --release --test main bench_backup -- --ignored --nocapture`.

use std::time::Instant;

use crate::support::{Must, TestDir, run};

const USERS: usize = 100_000;

#[test]
#[ignore = "benchmark: builds a 100,000-user state file first (about a minute, release)"]
fn bench_backup_100k_users() {
    let dir = TestDir::new("bench-backup");
    let mut ldif = String::with_capacity(USERS * 160);
    ldif.push_str("version: 1\n");
    for i in 0..USERS {
        ldif.push_str(&format!(
            "\ndn: uid=u{i:06},ou=people,dc=hr\nobjectClass: inetOrgPerson\nuid: u{i:06}\n\
             cn: User {i}\nsn: U{i}\ngivenName: User\nmail: u{i:06}@example.test\n\
             title: Engineer {}\n",
            i % 97
        ));
    }
    std::fs::write(dir.join("hr.ldif"), ldif).must("writing the source");
    let config = dir.config();
    std::fs::write(
        &config,
        r#"state_file = "state.redb"

[[connector]]
name = "hr"
type = "ldif"
mode = "source"
path = "hr.ldif"
anchor = "uid"

[[connector]]
name = "out"
type = "ldif"
mode = "target"
path = "out.ldif"
anchor = "entryUUID"

[[inbound]]
name = "people"
connector = "hr"
object_class = "inetOrgPerson"
object_type = "person"
precedence = 10
flows = [
  { target = "uid", source = "uid" },
  { target = "cn", source = "cn" },
  { target = "sn", source = "sn" },
  { target = "givenName", source = "givenName" },
  { target = "mail", source = "mail" },
  { target = "title", source = "title" },
]

[[outbound]]
name = "out-people"
connector = "out"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={uid},ou=people,dc=out"
deprovision = "delete"
flows = [
  { target = "uid", source = "uid" },
  { target = "cn", source = "cn" },
  { target = "sn", source = "sn" },
  { target = "givenName", source = "givenName" },
  { target = "mail", source = "mail" },
  { target = "title", source = "title" },
]
"#,
    )
    .must("writing the config");
    let cfg = config.to_string_lossy().into_owned();
    let filled = Instant::now();
    run(&["cycle", "-c", &cfg]).ok();
    let fill = filled.elapsed();
    let state_bytes = std::fs::metadata(dir.join("state.redb"))
        .must("the state file")
        .len();

    let dest = dir.join("backup.redb");
    let started = Instant::now();
    let b = run(&["backup", "-c", &cfg, &dest.to_string_lossy()]);
    let took = started.elapsed();
    b.ok();
    let copy_bytes = std::fs::metadata(&dest).must("the copy").len();
    eprintln!("{}", b.stdout.trim());
    eprintln!(
        "bench backup: {USERS} users (state file {:.1} MiB, filled by a first cycle in \
         {:.1} s): `bridgehead backup` took {:.2} s wall clock, verification included; copy \
         {:.1} MiB",
        state_bytes as f64 / 1048576.0,
        fill.as_secs_f64(),
        took.as_secs_f64(),
        copy_bytes as f64 / 1048576.0
    );
}
