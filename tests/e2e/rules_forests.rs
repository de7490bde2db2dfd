//! The out-of-box rule set over two AD-shaped sources (two forests exported with `ldifde`,
//! named in `rule_set_sources`): a person moved from corp to fabrikam, whose fabrikam
//! account carries corp's objectGUID in ms-DS-ConsistencyGuid, joins the corp person and is
//! one metaverse object; corp's rules (precedence 100) win over fabrikam's (110) where both
//! have a value, fabrikam's fill in what corp lacks. Deleting the corp account leaves the
//! person, now from fabrikam alone, with the same sourceAnchor.

use base64::Engine as _;

use crate::support::{Must, TestDir, cycle_json, norm_dn, read_ldif};

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

const CORP_GUID: [u8; 16] = [1; 16];
const FAB_GUID: [u8; 16] = [2; 16];
const OTHER_GUID: [u8; 16] = [3; 16];

fn corp(with_mover: bool) -> String {
    let mut s = String::from("version: 1\n\n");
    if with_mover {
        s.push_str(&format!(
            "dn: CN=Mia Mover,OU=Staff,DC=corp,DC=example,DC=test\nobjectClass: user\n\
             cn: Mia Mover\nsAMAccountName: mia\nsn: Mover\ndisplayName: Mia (corp)\n\
             userAccountControl: 512\nobjectGUID:: {}\n\n",
            b64(&CORP_GUID)
        ));
    }
    s
}

fn fabrikam() -> String {
    format!(
        "version: 1\n\n\
         dn: CN=Mia Mover,OU=Staff,DC=fabrikam,DC=example,DC=test\nobjectClass: user\n\
         cn: Mia Mover\nsAMAccountName: mia\nsn: Mover\ndisplayName: Mia (fabrikam)\n\
         title: Engineer\nuserAccountControl: 512\nobjectGUID:: {fab}\n\
         mS-DS-ConsistencyGuid:: {corp}\n\n\
         dn: CN=Olle Other,OU=Staff,DC=fabrikam,DC=example,DC=test\nobjectClass: user\n\
         cn: Olle Other\nsAMAccountName: olle\nsn: Other\nuserAccountControl: 512\n\
         objectGUID:: {other}\n\n",
        fab = b64(&FAB_GUID),
        corp = b64(&CORP_GUID),
        other = b64(&OTHER_GUID),
    )
}

const CONFIG: &str = r#"state_file = "state.redb"
rule_set = "azure-ad-connect"
rule_set_sources = ["corp", "fabrikam"]

[[connector]]
name = "corp"
type = "ldif"
mode = "source"
path = "corp.ldif"
anchor = "objectGUID"
partitions = ["DC=corp,DC=example,DC=test"]

[[connector]]
name = "fabrikam"
type = "ldif"
mode = "source"
path = "fabrikam.ldif"
anchor = "objectGUID"
partitions = ["DC=fabrikam,DC=example,DC=test"]

[[connector]]
name = "out"
type = "ldif"
mode = "target"
path = "out.ldif"
anchor = "entryUUID"
partitions = ["o=export"]
"#;

#[test]
fn rules_forests_join_on_the_source_anchor() {
    let dir = TestDir::new("rules-forests");
    std::fs::write(dir.join("corp.ldif"), corp(true)).must("corp.ldif");
    std::fs::write(dir.join("fabrikam.ldif"), fabrikam()).must("fabrikam.ldif");
    std::fs::write(dir.config(), CONFIG).must("config");
    cycle_json(&dir.config(), false).ok();

    let out = read_ldif(&dir.join("out.ldif"));
    let names: Vec<String> = out.iter().map(|e| norm_dn(&e.dn)).collect();
    assert_eq!(names.len(), 2, "Mia is one person, Olle another: {names:?}");
    let mia = out
        .iter()
        .find(|e| norm_dn(&e.dn) == norm_dn("uid=mia,ou=people,o=export"))
        .must("Mia in the target");
    assert_eq!(mia.values("sourceAnchor"), [b64(&CORP_GUID)]);
    assert_eq!(mia.values("displayName"), ["Mia (corp)"], "corp wins");
    assert_eq!(mia.values("title"), ["Engineer"], "fabrikam fills in");
    assert_eq!(
        mia.values("userPrincipalName"),
        ["mia@corp.example.test"],
        "corp's UPN suffix, corp's rule"
    );
    let olle = out
        .iter()
        .find(|e| norm_dn(&e.dn) == norm_dn("uid=olle,ou=people,o=export"))
        .must("Olle in the target");
    assert_eq!(olle.values("sourceAnchor"), [b64(&OTHER_GUID)]);
    assert_eq!(
        olle.values("userPrincipalName"),
        ["olle@fabrikam.example.test"]
    );

    // The corp account goes: Mia stays, from fabrikam, with the same sourceAnchor.
    std::fs::write(dir.join("corp.ldif"), corp(false)).must("corp.ldif");
    cycle_json(&dir.config(), false).ok();
    let out = read_ldif(&dir.join("out.ldif"));
    let mia = out
        .iter()
        .find(|e| norm_dn(&e.dn) == norm_dn("uid=mia,ou=people,o=export"))
        .must("Mia still in the target");
    assert_eq!(mia.values("sourceAnchor"), [b64(&CORP_GUID)]);
    assert_eq!(mia.values("displayName"), ["Mia (fabrikam)"]);
    assert_eq!(out.len(), 2);
}
