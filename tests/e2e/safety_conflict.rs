//! A unique-value conflict between two sources: `hr` and `crm` each bring a different
//! person with the same mail to a slapd target that keeps mail unique. One of the two is
//! exported, the other quarantined with an error naming both; the rest of the run goes on;
//! fixing the quarantined person's source clears it on the next cycle.

use super::safety_lab::{Options, Person, count_people, read_back, write_config, write_source};
use crate::support::lab::LdapServer;
use crate::support::lab::slapd;
use crate::support::{TestDir, connector_counts, cycle_json, norm_dn, run};

#[test]
fn safety_same_mail_from_two_sources_quarantines_one_until_fixed() {
    let dst = slapd::shared();
    let _hold = dst.hold();
    let ou = dst.create_ou("conflict");
    let dir = TestDir::new("conflict");
    let hr: Vec<Person> = (0..10).map(Person::numbered).collect();
    let mut crm: Vec<Person> = (50..55).map(Person::numbered).collect();
    // crm's p00050 claims hr's p00003's mail (in other letters: mail compares
    // case-insensitively).
    crm[0].mail = "P00003@Example.TEST".into();
    write_source(&dir.join("hr.ldif"), "hr", &hr, &[]);
    write_source(&dir.join("crm.ldif"), "crm", &crm, &[]);
    let cfg = write_config(
        &dir,
        dst,
        &ou,
        &Options {
            sources: vec!["hr".into(), "crm".into()],
            target_keys: "unique_attributes = [\"mail\"]".into(),
            ..Options::default()
        },
    );
    let cfg_arg = cfg.to_string_lossy().into_owned();

    let first = cycle_json(&cfg, false);
    assert!(
        matches!(first.code(), Some(0 | 1)),
        "the run goes on: {}",
        first.stderr
    );
    let counts = connector_counts(&first.json());
    assert_eq!(counts["dst"].1.adds, 14, "all but one went out: {counts:?}");
    assert_eq!(count_people(dst, &ou), 14);

    let dn_of = |uid: &str| norm_dn(&format!("uid={uid},{ou}"));
    let target = read_back(dst, &ou);
    let (exported, quarantined) = match (
        target.contains_key(&dn_of("p00003")),
        target.contains_key(&dn_of("p00050")),
    ) {
        (true, false) => ("p00003", "p00050"),
        (false, true) => ("p00050", "p00003"),
        other => panic!("exactly one of the two should be at the target: {other:?}"),
    };
    let errors = run(&["errors", "-c", &cfg_arg]);
    errors.expect_code(1);
    let text = errors.stdout.to_lowercase();
    assert!(
        text.contains("conflict")
            && text.contains(&dn_of(exported))
            && text.contains(&format!("person {quarantined}"))
            && text.contains("p00003@example.test"),
        "one error naming the holder ({exported}), the quarantined person ({quarantined}) and \
         the value:\n{}",
        errors.stdout
    );
    assert_eq!(
        text.matches("conflict in dst").count(),
        1,
        "exactly one object is quarantined:\n{}",
        errors.stdout
    );

    // The quarantined person gets its own mail at its source: cleared on the next cycle.
    let (fixed_file, mut fixed) = if quarantined == "p00050" {
        ("crm", crm)
    } else {
        ("hr", hr)
    };
    for p in fixed.iter_mut().filter(|p| p.uid == quarantined) {
        p.mail = format!("{quarantined}@fixed.example.test");
    }
    write_source(
        &dir.join(&format!("{fixed_file}.ldif")),
        fixed_file,
        &fixed,
        &[],
    );
    let second = cycle_json(&cfg, false);
    second.ok();
    assert_eq!(connector_counts(&second.json())["dst"].1.adds, 1);
    let errors = run(&["errors", "-c", &cfg_arg]);
    errors.ok();
    assert!(
        errors.stdout.contains("no object has an error"),
        "{}",
        errors.stdout
    );
    let target = read_back(dst, &ou);
    assert_eq!(target.len(), 15);
    let mail_of = |uid: &str| {
        target
            .get(&dn_of(uid))
            .and_then(|a| a.get("mail"))
            .and_then(|m| m.first().cloned())
            .unwrap_or_default()
    };
    assert_eq!(
        mail_of(quarantined),
        format!("{quarantined}@fixed.example.test")
    );
    assert_eq!(mail_of(exported).to_lowercase(), "p00003@example.test");
}
