//! Tests of the expression language: every function against tables of cases (Microsoft's
//! documented examples cited where they exist), operators, multi-valued behaviour, compile
//! errors with exact offsets, and a fuzz run that must never panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use super::*;
use crate::model::{RefTarget, Value};

// ---- fixtures ------------------------------------------------------------------------------

struct Obj {
    attrs: HashMap<String, ValueSet>,
    dn: Option<Dn>,
}

impl AttrSource for Obj {
    fn get(&self, name: &str) -> Option<&ValueSet> {
        self.attrs.get(&name.to_ascii_lowercase())
    }
    fn dn(&self) -> Option<&Dn> {
        self.dn.as_ref()
    }
}

fn st(s: &str) -> Value {
    Value::String(s.to_string())
}

fn guid_bytes() -> Vec<u8> {
    // 01234567-89ab-cdef-0123-456789abcdef with the first three fields little-endian.
    vec![
        0x67, 0x45, 0x23, 0x01, 0xab, 0x89, 0xef, 0xcd, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ]
}

fn sid_bytes() -> Vec<u8> {
    // S-1-5-21-1004336348-1177238915-682003330-512
    let mut b = vec![1, 5, 0, 0, 0, 0, 0, 5];
    for sub in [21u32, 1_004_336_348, 1_177_238_915, 682_003_330, 512] {
        b.extend(sub.to_le_bytes());
    }
    b
}

const USER_DN: &str = "CN=Jürgen Ørsted,OU=Atlanta,OU=GA,OU=US, DC=contoso,DC=com";

/// A user with single-, multi-valued, non-ASCII, empty and binary attributes.
fn user() -> Obj {
    let mut attrs: HashMap<String, ValueSet> = HashMap::new();
    let mut put = |name: &str, values: Vec<Value>| {
        attrs.insert(name.to_ascii_lowercase(), values.into_iter().collect());
    };
    put("givenName", vec![st("Jürgen")]);
    put("sn", vec![st("Ørsted")]);
    put("displayName", vec![st("Jürgen Ørsted")]);
    put("cn", vec![st("山田 太郎")]);
    put("alias", vec![st("jorsted")]);
    put("employeeType", vec![st("Intern")]);
    put("city", vec![st("Paris")]);
    put("description", vec![st("")]);
    put("padded", vec![st("  Test  ")]);
    put(
        "address",
        vec![st("One Microsoft Way\r\nRedmond, WA\r\nUSA")],
    );
    put(
        "proxyAddresses",
        vec![
            st("SMTP:john.doe@contoso.com"),
            st("smtp:jd@contoso.com"),
            st("SIP:jd@contoso.com"),
        ],
    );
    put("otherPhone", vec![st("555-1234"), st("555-9876")]);
    put("spaced", vec![st(" a "), st(" b")]);
    put("userAccountControl", vec![Value::Integer(514)]);
    put("pwdLastSet", vec![Value::Integer(130_543_784_930_000_000)]);
    put("objectGUID", vec![Value::Binary(guid_bytes())]);
    put("objectSid", vec![Value::Binary(sid_bytes())]);
    put("numText", vec![st("42")]);
    put("isAdmin", vec![Value::Boolean(true)]);
    put("flag", vec![st("FALSE")]);
    put(
        "manager",
        vec![Value::Reference(RefTarget::Dn(
            Dn::parse("CN=Boss\\, Big,OU=Atlanta,DC=contoso,DC=com").unwrap(),
        ))],
    );
    put(
        "memberOf",
        vec![
            Value::Reference(RefTarget::Dn(
                Dn::parse("CN=Sales,DC=contoso,DC=com").unwrap(),
            )),
            Value::Reference(RefTarget::Dn(
                Dn::parse("CN=All,DC=contoso,DC=com").unwrap(),
            )),
        ],
    );
    put("whenCreated", vec![st("20140905081453.0Z")]);
    put("extra", vec![st("x"), st("y")]);
    Obj {
        attrs,
        dn: Some(Dn::parse(USER_DN).unwrap()),
    }
}

fn empty() -> Obj {
    Obj {
        attrs: HashMap::new(),
        dn: None,
    }
}

const NOW: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

/// What a case expects.
#[derive(Debug)]
enum X {
    /// One string.
    S(&'static str),
    /// One number.
    N(i64),
    /// One boolean.
    B(bool),
    /// One date (Unix seconds).
    D(i64),
    /// One binary value.
    Bin(Vec<u8>),
    /// Several strings (as a set).
    M(&'static [&'static str]),
    /// No value.
    Null,
    /// An error whose message contains this.
    E(&'static str),
    AuthNull,
    Ignore,
}

fn expected(x: &X) -> Outcome {
    let one = |v: Value| Outcome::Values(ValueSet::one(v));
    match x {
        X::S(s) => one(st(s)),
        X::N(n) => one(Value::Integer(*n)),
        X::B(b) => one(Value::Boolean(*b)),
        X::D(d) => one(Value::DateTime(*d)),
        X::Bin(b) => one(Value::Binary(b.clone())),
        X::M(list) => Outcome::Values(list.iter().map(|s| st(s)).collect()),
        X::Null => Outcome::Values(ValueSet::new()),
        X::E(_) | X::AuthNull | X::Ignore => unreachable!(),
    }
}

fn eval_on(text: &str, obj: &Obj) -> Outcome {
    let e = Expr::compile(text, &CompileContext::default())
        .unwrap_or_else(|e| panic!("{text}: does not compile: {e}"));
    e.eval(obj, NOW)
}

/// Runs a table of cases against the standard user object.
fn table(cases: &[(&str, X)]) {
    let obj = user();
    let mut failures = Vec::new();
    for (text, want) in cases {
        let got = eval_on(text, &obj);
        let ok = match (want, &got) {
            (X::E(part), Outcome::Error(m)) => m.contains(part),
            (X::E(_), _) => false,
            (X::AuthNull, o) => *o == Outcome::AuthoritativeNull,
            (X::Ignore, o) => *o == Outcome::IgnoreThisFlow,
            (w, o) => *o == expected(w),
        };
        if !ok {
            failures.push(format!("{text}\n    want {want:?}\n    got  {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

use X::*;

// ---- language ------------------------------------------------------------------------------

#[test]
fn literals_and_constants() {
    table(&[
        (r#""Contoso""#, S("Contoso")),
        (r#""say ""hi""""#, S("say \"hi\"")),
        (r#""say \"hi\"""#, S("say \"hi\"")),
        (r#""back\slash""#, S("back\\slash")),
        (r#""""#, S("")),
        ("98052", N(98052)),
        ("&HFF", N(255)), // Microsoft: "Hexadecimal values are prefixed with &H"
        ("&hff", N(255)),
        ("-5", N(-5)),
        ("True", B(true)),
        ("FALSE", B(false)),
        ("NULL", Null),
        ("Nothing", Null),
        ("CRLF", S("\r\n")),
        ("AuthoritativeNull", AuthNull),
        ("IgnoreThisFlow", Ignore),
        ("[GIVENNAME]", S("Jürgen")), // attribute names are case-insensitive
        ("[missing]", Null),
        ("[dn]", S(USER_DN)),
        ("[description]", S("")),
    ]);
}

#[test]
fn operators() {
    table(&[
        (r#"[givenName] & " " & [sn]"#, S("Jürgen Ørsted")),
        (r#""a" & [missing]"#, S("a")),
        (r#"[missing] & [missing2]"#, Null),
        (r#""n=" & 5"#, S("n=5")),
        (r#""b=" & True"#, S("b=True")),
        ("1 + 2", N(3)),
        ("7 - 10", N(-3)),
        ("6 / 4", N(1)),
        ("-7 / 2", N(-3)),
        // Microsoft: "Operators are evaluated left to right and have the same evaluation
        // priority ... 2*(5+3) is not the same as 2*5+3".
        ("2*(5+3)", N(16)),
        ("2*5+3", N(13)),
        ("3+2*5", N(25)),
        ("1 / 0", E("division by zero")),
        ("9223372036854775807 + 1", E("overflow")),
        ("-(&H8000000000000000)", E("overflow")),
        ("[missing] + 1", Null),
        ("[numText] + 1", N(43)),
        ("[givenName] + 1", E("not a number")),
        (r#"[givenName] = "Jürgen""#, B(true)),
        (r#"[givenName] = "jürgen""#, B(false)), // case-sensitive
        (r#"[givenName] <> "x""#, B(true)),
        (r#""a" < "b""#, B(true)),
        ("2 <= 2", B(true)),
        ("3 > 2", B(true)),
        ("2 >= 3", B(false)),
        (r#"[numText] = 42"#, B(true)),
        (r#"[userAccountControl] = 514"#, B(true)),
        ("[missing] = 1", Null),
        (r#"[isAdmin] = "true""#, B(true)),
        (
            r#"[manager] = "cn=boss\, big,ou=atlanta,dc=contoso,dc=com""#,
            B(true),
        ),
        ("True && False", B(false)),
        ("True || False", B(true)),
        ("True And True", B(true)),
        ("False Or True", B(true)),
        ("!True", B(false)),
        ("Not False", B(true)),
        ("!(1 = 2)", B(true)),
        ("[missing] && True", B(false)),
        ("[missing] || True", B(true)),
        // comparisons bind tighter than && / ||, as Microsoft's default rules need
        (
            r#"IsPresent([sAMAccountName]) = False || [givenName] = "Jürgen""#,
            B(true),
        ),
        (r#"1 = 1 && 2 = 2"#, B(true)),
        (r#""t-" & [alias] = "t-jorsted""#, B(true)),
        // && does not evaluate its right side when the left decides
        (r#"False && Error("no")"#, B(false)),
        (r#"True || Error("no")"#, B(true)),
        (r#"True && Error("yes")"#, E("yes")),
        ("(1 + 2) * 3", N(9)),
    ]);
}

#[test]
fn signals_win_even_when_nested() {
    table(&[
        ("IIF(True, AuthoritativeNull, [cn])", AuthNull),
        ("IIF(False, [cn], IgnoreThisFlow)", Ignore),
        ("IIF(True, AuthoritativeNull(), [cn])", AuthNull),
        (
            "IIF(IsPresent([missing]), [missing], IgnoreThisFlow())",
            Ignore,
        ),
        (r#"Trim(IIF(True, Error("boom"), "x"))"#, E("boom")),
        (r#""a" & AuthoritativeNull"#, AuthNull),
        // only a taken branch fires
        (r#"IIF(True, "ok", Error("never"))"#, S("ok")),
        (r#"IIF(False, Error("never"), "ok")"#, S("ok")),
    ]);
}

// ---- program flow --------------------------------------------------------------------------

#[test]
fn program_flow() {
    table(&[
        // IIF — Microsoft: IIF([employeeType]="Intern","t-" & [alias],[alias])
        (
            r#"IIF([employeeType]="Intern","t-" & [alias],[alias])"#,
            S("t-jorsted"),
        ),
        (
            r#"IIF([employeeType]="FTE","t-" & [alias],[alias])"#,
            S("jorsted"),
        ),
        ("IIF([missing], 1, 2)", N(2)),
        ("IIF(1, \"y\", \"n\")", S("y")),
        ("IIF(0, \"y\", \"n\")", S("n")),
        ("IIF([flag], \"y\", \"n\")", S("n")),
        ("IIF([givenName], 1, 2)", E("not a boolean")),
        // Error — Microsoft: IIF(IsPresent([accountName]),[accountName],Error("AccountName is required"))
        (
            r#"IIF(IsPresent([accountName]),[accountName],Error("AccountName is required"))"#,
            E("AccountName is required"),
        ),
        (r#"Error("Jürgen: 山田")"#, E("Jürgen: 山田")),
        ("Error(NULL)", E("Error")),
        // Switch — Microsoft's example with [city] = "Paris"
        (
            r#"Switch([city] = "London", "English", [city] = "Rome", "Italian", [city] = "Paris", "French", True, Error("Unknown city"))"#,
            S("French"),
        ),
        (
            r#"Switch([city] = "Oslo", "Norwegian", True, Error("Unknown city"))"#,
            E("Unknown city"),
        ),
        (r#"Switch([city] = "Oslo", "Norwegian")"#, Null),
        (r#"Switch([city] = "Paris", NULL, True, "x")"#, Null),
        // Coalesce (first present argument)
        (
            "Coalesce([missing], [description], [givenName])",
            S("Jürgen"),
        ),
        ("Coalesce([missing], NULL)", Null),
        (
            "Coalesce([proxyAddresses])",
            M(&[
                "SMTP:john.doe@contoso.com",
                "smtp:jd@contoso.com",
                "SIP:jd@contoso.com",
            ]),
        ),
        // With — Microsoft's shape: With($v, Where(...), IIF(Count($v)>0, $v, NULL))
        (
            r#"With($smtp, Where($item, [proxyAddresses], LCase(Left($item, 5)) = "smtp:"), IIF(Count($smtp) > 0, $smtp, NULL))"#,
            M(&["SMTP:john.doe@contoso.com", "smtp:jd@contoso.com"]),
        ),
        (
            r#"With($x, Where($item, [proxyAddresses], False), IIF(Count($x) > 0, $x, NULL))"#,
            Null,
        ),
        (
            r#"With($g, [givenName], $g & " " & $g)"#,
            S("Jürgen Jürgen"),
        ),
    ]);
}

#[test]
fn select_and_where() {
    table(&[
        // Microsoft: Select($item,[otherPhone],Replace($item,"-",""))
        (
            r#"Select($item,[otherPhone],Replace($item,"-",""))"#,
            M(&["5551234", "5559876"]),
        ),
        (r#"Select($item, [givenName], UCase($item))"#, S("JÜRGEN")),
        (r#"Select($item, [missing], UCase($item))"#, Null),
        (
            r#"Select($item, Split("a,b", ","), $item & $item)"#,
            M(&["aa", "bb"]),
        ),
        (
            r#"Select($item, [proxyAddresses], IIF(Left($item, 4) = "SIP:", NULL, $item))"#,
            M(&["SMTP:john.doe@contoso.com", "smtp:jd@contoso.com"]),
        ),
        (
            r#"Where($item, [proxyAddresses], Left($item, 4) = "smtp")"#,
            S("smtp:jd@contoso.com"),
        ),
        (
            r#"Where($item, [proxyAddresses], InStr($item, "SIP:") = 0)"#,
            M(&["SMTP:john.doe@contoso.com", "smtp:jd@contoso.com"]),
        ),
        (r#"Where($item, [missing], True)"#, Null),
        (
            r#"Where($i, [otherPhone], Select($j, [extra], $j = "x"))"#,
            M(&["555-1234", "555-9876"]),
        ),
        (
            r#"Count(Where($item, [memberOf], InStr(CStr($item), "Sales") > 0))"#,
            N(1),
        ),
        // nested binders see their own variables
        (
            r#"Select($a, Split("x,y", ","), Join(Select($b, Split("1,2", ","), $a & $b), "+"))"#,
            M(&["x1+x2", "y1+y2"]),
        ),
    ]);
}

// ---- multi-valued --------------------------------------------------------------------------

#[test]
fn multi_valued_functions() {
    table(&[
        // Microsoft (expressions page): Trim([proxyAddresses]) trims every value
        ("Trim([spaced])", M(&["a", "b"])),
        // Microsoft: Word([proxyAddresses],1,"@") & "@contoso.com"
        (
            r#"Word([proxyAddresses],1,"@") & "@fabrikam.com""#,
            M(&[
                "SMTP:john.doe@fabrikam.com",
                "smtp:jd@fabrikam.com",
                "SIP:jd@fabrikam.com",
            ]),
        ),
        // Microsoft: IIF(InStr([proxyAddresses],"SIP:")=1,NULL,[proxyAddresses])
        (
            r#"IIF(InStr([proxyAddresses],"SIP:")=1,NULL,[proxyAddresses])"#,
            M(&["SMTP:john.doe@contoso.com", "smtp:jd@contoso.com"]),
        ),
        // Microsoft: IIF(Contains([proxyAddresses],"SMTP:")>0,[proxyAddresses],Error(...))
        (
            r#"IIF(Contains([proxyAddresses],"SMTP:")>0,[proxyAddresses],Error("No primary SMTP address found."))"#,
            M(&[
                "SMTP:john.doe@contoso.com",
                "smtp:jd@contoso.com",
                "SIP:jd@contoso.com",
            ]),
        ),
        (
            r#"IIF(Contains([otherPhone],"SMTP:")>0,[otherPhone],Error("No primary SMTP address found."))"#,
            E("No primary SMTP address found."),
        ),
        // two different multi-valued attributes combine every value with every value
        (
            r#"[extra] & "-" & [otherPhone]"#,
            M(&["x-555-1234", "x-555-9876", "y-555-1234", "y-555-9876"]),
        ),
        // the same attribute twice walks together
        (
            r#"[otherPhone] & "/" & [otherPhone]"#,
            M(&["555-1234/555-1234", "555-9876/555-9876"]),
        ),
        (r#"Len([otherPhone])"#, N(8)),
        (
            r#"UCase([proxyAddresses])"#,
            M(&[
                "SMTP:JOHN.DOE@CONTOSO.COM",
                "SMTP:JD@CONTOSO.COM",
                "SIP:JD@CONTOSO.COM",
            ]),
        ),
    ]);
}

#[test]
fn count_item_contains_join() {
    // ValueSet order: "SIP:..." < "SMTP:..." < "smtp:..."
    table(&[
        ("Count([proxyAddresses])", N(3)),
        ("Count([givenName])", N(1)),
        ("Count([missing])", N(0)),
        // Microsoft: Contains returns the index, 0 when not found; case-sensitive by default
        (r#"Contains([proxyAddresses], "SMTP:")"#, N(2)),
        (r#"Contains([proxyAddresses], "smtp:")"#, N(3)),
        (
            r#"Contains([proxyAddresses], "smtp:", CaseInsensitive)"#,
            N(2),
        ),
        (
            r#"Contains([proxyAddresses], "SMTP:", CaseSensitive)"#,
            N(2),
        ),
        (r#"Contains([proxyAddresses], "x400:")"#, N(0)),
        (r#"Contains([missing], "a")"#, N(0)),
        (r#"Contains([proxyAddresses], [missing])"#, Null),
        (
            r#"Contains([memberOf], "cn=sales,dc=contoso,dc=com")"#,
            N(2),
        ),
        (r#"Contains([memberOf], "Sales")"#, N(0)), // references must match exactly
        (r#"Contains([cn], "太郎")"#, N(1)),
        // Microsoft: Mid(Item([proxyAddresses],Contains([proxyAddresses], "SMTP:")),6)
        (
            r#"Mid(Item([proxyAddresses],Contains([proxyAddresses], "SMTP:")),6)"#,
            S("john.doe@contoso.com"),
        ),
        ("Item([proxyAddresses], 1)", S("SIP:jd@contoso.com")),
        ("Item([proxyAddresses], 4)", E("out of range")),
        ("Item([proxyAddresses], 0)", E("out of range")),
        ("Item([missing], 1)", Null),
        ("Item([objectGUID], 1)", Bin(guid_bytes())),
        ("ItemOrNull([proxyAddresses], 3)", S("smtp:jd@contoso.com")),
        ("ItemOrNull([proxyAddresses], 4)", Null),
        ("ItemOrNull([proxyAddresses], -1)", Null),
        // Microsoft: Join([proxyAddresses],",")
        (
            r#"Join([proxyAddresses],",")"#,
            S("SIP:jd@contoso.com,SMTP:john.doe@contoso.com,smtp:jd@contoso.com"),
        ),
        ("Join([otherPhone])", S("555-1234 555-9876")),
        ("Join([otherPhone], NULL)", S("555-1234555-9876")),
        (r#"Join([otherPhone], "")"#, S("555-1234555-9876")),
        (r#"Join([givenName], "; ")"#, S("Jürgen")),
        (r#"Join([missing], ",")"#, Null),
        (r#"Join([objectGUID], ",")"#, E("binary")),
    ]);
}

#[test]
fn split_and_remove_duplicates() {
    table(&[
        // Microsoft: Split("SMTP:john.doe@contoso.com,smtp:jd@contoso.com",",") → 2 values
        (
            r#"Split("SMTP:john.doe@contoso.com,smtp:jd@contoso.com",",")"#,
            M(&["SMTP:john.doe@contoso.com", "smtp:jd@contoso.com"]),
        ),
        (
            r#"Count(Split("SMTP:john.doe@contoso.com,smtp:jd@contoso.com",","))"#,
            N(2),
        ),
        (r#"Split("a;b;c", ";", 2)"#, M(&["a", "b;c"])),
        (r#"Split("a;b;c", ";", 0)"#, Null),
        (r#"Split("a,,b", ",")"#, M(&["a", "", "b"])),
        (r#"Split("", ",")"#, S("")),
        (r#"Split([missing], ",")"#, Null),
        (
            r#"Split("Jürgen·Ørsted·山田", "·")"#,
            M(&["Jürgen", "Ørsted", "山田"]),
        ),
        (r#"Split([otherPhone], "-")"#, M(&["555", "1234", "9876"])),
        (r#"Count(Split([otherPhone], "-"))"#, N(4)),
        (r#"Split("abc", [missing])"#, Null),
        // RemoveDuplicates — Microsoft: RemoveDuplicates([proxyAddresses])
        (r#"Count(RemoveDuplicates(Split("a,b,a,B", ",")))"#, N(3)),
        (r#"Count(Split("a,b,a,B", ","))"#, N(4)),
        (
            "RemoveDuplicates([proxyAddresses])",
            M(&[
                "SMTP:john.doe@contoso.com",
                "smtp:jd@contoso.com",
                "SIP:jd@contoso.com",
            ]),
        ),
        ("RemoveDuplicates([missing])", Null),
        ("RemoveDuplicates([givenName])", S("Jürgen")),
    ]);
}

// ---- evaluation functions ------------------------------------------------------------------

#[test]
fn evaluation_functions() {
    table(&[
        // Microsoft: IsNull([displayName]) is True when the attribute is absent
        ("IsNull([displayName])", B(false)),
        ("IsNull([missing])", B(true)),
        ("IsNull([description])", B(false)),
        ("IsNull(NULL)", B(true)),
        // Microsoft: IsNullOrEmpty([displayName]); inverse of IsPresent
        ("IsNullOrEmpty([displayName])", B(false)),
        ("IsNullOrEmpty([description])", B(true)),
        ("IsNullOrEmpty([missing])", B(true)),
        ("IsPresent([displayName])", B(true)),
        ("IsPresent([description])", B(false)),
        ("IsPresent([missing])", B(false)),
        ("IsPresent([proxyAddresses])", B(true)),
        ("IsPresent([objectGUID])", B(true)),
        ("IsPresent(\" \")", B(true)),
        ("IsEmpty([description])", B(true)),
        ("IsEmpty([missing])", B(false)),
        ("IsEmpty([cn])", B(false)),
        ("IsString([cn])", B(true)),
        ("IsString([userAccountControl])", B(true)),
        ("IsString([objectGUID])", B(false)),
        ("IsString([missing])", B(false)),
        // A per-value predicate over a multi-valued attribute gives one boolean per value;
        // as a set that is {True} / {False}.
        ("IsString([spaced])", B(true)),
        ("IsNumeric([otherPhone])", B(false)),
        ("IsNumeric([numText])", B(true)),
        ("IsNumeric([userAccountControl])", B(true)),
        ("IsNumeric([givenName])", B(false)),
        ("IsNumeric(\"&HFF\")", B(true)),
        ("IsNumeric([missing])", B(false)),
        ("IsDate([whenCreated])", B(true)),
        ("IsDate(\"2001-02-30\" & \"\")", B(false)),
        ("IsDate(Now())", B(true)),
        ("IsDate([cn])", B(false)),
        ("IsGuid(\"01234567-89ab-cdef-0123-456789abcdef\")", B(true)),
        (
            "IsGuid(\"{01234567-89AB-CDEF-0123-456789ABCDEF}\")",
            B(true),
        ),
        ("IsGuid(\"0123456789abcdef0123456789abcdef\")", B(false)),
        ("IsGuid([cn])", B(false)),
        ("IsGuid([missing])", B(false)),
        // Microsoft: IsBitSet(&HF,4) returns True
        ("IsBitSet(&HF,4)", B(true)),
        ("IsBitSet([userAccountControl], 2)", B(true)),
        ("IsBitSet([userAccountControl], 1)", B(false)),
        ("IsBitSet(&HF, 0)", B(false)),
        ("IsBitSet([missing], 2)", Null),
    ]);
}

#[test]
fn math_functions() {
    table(&[
        // Microsoft: BitAnd(&HF, &HF7) returns 7
        ("BitAnd(&HF, &HF7)", N(7)),
        ("BitAnd([userAccountControl], 2)", N(2)),
        ("BitAnd([missing], 2)", Null),
        ("BitAnd([givenName], 2)", E("not a number")),
        ("BitOr(&HF0, &H0F)", N(255)),
        ("BitOr([userAccountControl], 2)", N(514)),
        ("BitOr(512, [numText])", N(554)),
        ("BitOr([missing], 2)", Null),
        ("BitOr([givenName], 2)", E("not a number")),
        ("RandomNum(5, 5)", N(5)),
        ("RandomNum(6, 5)", E("greater")),
        (
            "IsNumeric(RandomNum(-9223372036854775807, 9223372036854775807))",
            B(true),
        ),
        (
            "RandomNum(-9223372036854775807, 9223372036854775807) <> NULL",
            Null,
        ), // VBA: x <> Null is Null
    ]);
    let e = Expr::compile("RandomNum(100, 999)", &CompileContext::default()).unwrap();
    for _ in 0..50 {
        match e.eval(&empty(), NOW) {
            Outcome::Values(v) => match v.first() {
                Some(Value::Integer(n)) => assert!((100..=999).contains(n)),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }
}

// ---- conversion ----------------------------------------------------------------------------

#[test]
fn conversion_functions() {
    table(&[
        // Microsoft: CBool([attrib1] = [attrib2]) is True when both are equal
        ("CBool([givenName] = [givenName])", B(true)),
        ("CBool([givenName] = [sn])", B(false)),
        ("CBool(5)", B(true)),
        ("CBool(0)", B(false)),
        ("CBool([flag])", B(false)),
        ("CBool([numText])", B(true)),
        ("CBool([missing])", Null),
        ("CBool([cn])", E("not a boolean")),
        // Microsoft's default rule: CBool(IIF(IsPresent([x]),BitAnd([x],&H21C07000) > 0,NULL))
        (
            "CBool(IIF(IsPresent([msExchRecipientTypeDetails]),BitAnd([msExchRecipientTypeDetails],&H21C07000) > 0,NULL))",
            Null,
        ),
        // Microsoft: CDate("2013-01-10 4:00 PM -8") is 2013-01-11 12:00 AM
        ("CDate(\"2013-01-10 4:00 PM -8\")", D(1_357_862_400)),
        ("CDate(\"2012-01-01 23:00:00\")", D(1_325_458_800)),
        ("CDate(\"2012-01-01T23:00:00Z\")", D(1_325_458_800)),
        ("CDate(\"2012-01-02T01:00:00+02:00\")", D(1_325_458_800)),
        ("CDate(\"12/25/2007\")", D(1_198_540_800)),
        ("CDate([whenCreated])", D(1_409_904_893)),
        ("CDate([missing])", Null),
        ("CDate([cn])", E("not a date")),
        ("CDate(\"2001-13-01\" & \"\")", E("not a date")),
        // CGuid: both documented forms
        (
            "CGuid(\"01234567-89ab-cdef-0123-456789abcdef\")",
            Bin(guid_bytes()),
        ),
        (
            "CGuid(\"{01234567-89AB-CDEF-0123-456789ABCDEF}\")",
            Bin(guid_bytes()),
        ),
        ("CGuid([cn])", E("not a GUID")),
        ("CGuid([missing])", Null),
        (
            "StringFromGuid(CGuid(\"{01234567-89ab-cdef-0123-456789abcdef}\"))",
            S("{01234567-89ab-cdef-0123-456789abcdef}"),
        ),
        // CNum
        ("CNum(\"42\")", N(42)),
        ("CNum(\" -7 \")", N(-7)),
        ("CNum(\"&H10\")", N(16)),
        ("CNum([userAccountControl])", N(514)),
        ("CNum([givenName])", E("not a number")),
        ("CNum(\"1.5\")", E("not a number")),
        ("CNum([missing])", Null),
        ("CNum(\"99999999999999999999\")", E("not a number")),
        // CStr — Microsoft: CStr([dn]) could return "cn=Joe,dc=contoso,dc=com"
        ("CStr([dn])", S(USER_DN)),
        ("CStr(42)", S("42")),
        ("CStr(True)", S("True")),
        (
            "CStr([manager])",
            S("CN=Boss\\, Big,OU=Atlanta,DC=contoso,DC=com"),
        ),
        (
            "CStr(DateFromNum(129699324000000000))",
            S("2012-01-01T23:00:00Z"),
        ),
        ("CStr([objectGUID])", E("binary")),
        ("CStr([missing])", Null),
        ("CStr([cn])", S("山田 太郎")),
        // CRef
        ("CStr(CRef(\"CN=A,DC=b\"))", S("CN=A,DC=b")),
        ("CRef(\"not a dn\")", E("CRef")),
        ("CRef([missing])", Null),
    ]);
}

#[test]
fn base64_and_hex() {
    table(&[
        // Microsoft: ConvertToBase64("Hello world!") = "SABlAGwAbABvACAAdwBvAHIAbABkACEA"
        (
            "ConvertToBase64(\"Hello world!\")",
            S("SABlAGwAbABvACAAdwBvAHIAbABkACEA"),
        ),
        (
            "ConvertToBase64([displayName])",
            S("SgD8AHIAZwBlAG4AIADYAHIAcwB0AGUAZAA="),
        ),
        ("ConvertToBase64(\"山田\")", S("cVwwdQ==")),
        ("ConvertToBase64(\"\")", S("")),
        (
            "ConvertToBase64([objectGUID])",
            S("Z0UjAauJ780BI0VniavN7w=="),
        ),
        ("ConvertToBase64([missing])", Null),
        // Microsoft: both examples return "Hello world!"
        (
            "ConvertFromBase64(\"SABlAGwAbABvACAAdwBvAHIAbABkACEA\")",
            S("Hello world!"),
        ),
        (
            "ConvertFromBase64(\"SGVsbG8gd29ybGQh\", UTF8)",
            S("Hello world!"),
        ),
        (
            "ConvertFromBase64(\"SGVsbG8gd29ybGQh\", \"utf8\")",
            S("Hello world!"),
        ),
        (
            "ConvertFromBase64(\"SGVsbG8gd29ybGQh\", ASCII)",
            S("Hello world!"),
        ),
        ("ConvertFromBase64(\"w7w=\", ASCII)", S("??")),
        (
            "ConvertFromBase64(ConvertToBase64([displayName]))",
            S("Jürgen Ørsted"),
        ),
        ("ConvertFromBase64(\"!!\")", E("not base64")),
        ("ConvertFromBase64(\"SGk=\")", S("\u{6948}")), // "Hi" read as one UTF-16 unit
        ("ConvertFromBase64(\"SGVsbG8=\")", E("odd number")),
        ("ConvertFromBase64(\"/w==\", UTF8)", E("UTF-8")),
        ("ConvertFromBase64([missing])", Null),
        // Microsoft: ConvertToUTF8Hex("Hello world!") = 48656C6C6F20776F726C6421
        (
            "ConvertToUTF8Hex(\"Hello world!\")",
            S("48656C6C6F20776F726C6421"),
        ),
        ("ConvertToUTF8Hex([givenName])", S("4AC3BC7267656E")),
        ("ConvertToUTF8Hex(\"\")", S("")),
        ("ConvertToUTF8Hex([missing])", Null),
        // Microsoft: ConvertFromUTF8Hex("48656C6C6F20776F726C6421") = "Hello world!"
        (
            "ConvertFromUTF8Hex(\"48656C6C6F20776F726C6421\")",
            S("Hello world!"),
        ),
        ("ConvertFromUTF8Hex(ConvertToUTF8Hex([cn]))", S("山田 太郎")),
        ("ConvertFromUTF8Hex(\"4\")", E("odd")),
        ("ConvertFromUTF8Hex(\"ZZ\")", E("not hexadecimal")),
        ("ConvertFromUTF8Hex(\"C3\")", E("UTF-8")),
    ]);
}

#[test]
fn guid_and_sid() {
    table(&[
        (
            "StringFromGuid([objectGUID])",
            S("{01234567-89ab-cdef-0123-456789abcdef}"),
        ),
        ("StringFromGuid([missing])", Null),
        ("StringFromGuid([cn])", E("binary")),
        ("StringFromGuid(Item([objectSid], 1))", E("16 bytes")),
        (
            "StringFromSid([objectSid])",
            S("S-1-5-21-1004336348-1177238915-682003330-512"),
        ),
        ("StringFromSid([objectGUID])", E("SID")),
        ("StringFromSid([missing])", Null),
        ("Len(Guid())", N(36)),
        ("IsGuid(Guid())", B(true)),
    ]);
    // Well-known SIDs: S-1-1-0 (Everyone) and a 48-bit authority printed in hex.
    let mut obj = user();
    obj.attrs.insert(
        "everyone".into(),
        ValueSet::one(Value::Binary(vec![1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0])),
    );
    obj.attrs.insert(
        "bigauth".into(),
        ValueSet::one(Value::Binary(vec![1, 0, 1, 0, 0, 0, 0, 0])),
    );
    obj.attrs
        .insert("short".into(), ValueSet::one(Value::Binary(vec![1])));
    assert_eq!(
        eval_on("StringFromSid([everyone])", &obj),
        expected(&S("S-1-1-0"))
    );
    assert_eq!(
        eval_on("StringFromSid([bigauth])", &obj),
        expected(&S("S-1-0x010000000000"))
    );
    assert!(matches!(
        eval_on("StringFromSid([short])", &obj),
        Outcome::Error(_)
    ));
}

// ---- dates ---------------------------------------------------------------------------------

#[test]
fn date_functions() {
    table(&[
        ("Now()", D(NOW)),
        (
            "FormatDateTime(Now(), \"yyyy-MM-ddTHH:mm:ss\")",
            S("2023-11-14T22:13:20"),
        ),
        // Microsoft: DateFromNum(129699324000000000) is 2012-01-01 23:00:00
        ("DateFromNum(129699324000000000)", D(1_325_458_800)),
        ("DateFromNum(0)", D(-11_644_473_600)),
        ("DateFromNum([missing])", Null),
        // Microsoft: NumFromDate(CDate("2012-01-01 23:00:00")) returns 129699324000000000
        (
            "NumFromDate(CDate(\"2012-01-01 23:00:00\"))",
            N(129_699_324_000_000_000),
        ),
        (
            "NumFromDate(DateFromNum([pwdLastSet]))",
            N(130_543_784_930_000_000),
        ),
        ("NumFromDate([missing])", Null),
        // Microsoft: FormatDateTime(CDate("12/25/2007"),"yyyy-MM-dd") is "2007-12-25"
        (
            "FormatDateTime(CDate(\"12/25/2007\"),\"yyyy-MM-dd\")",
            S("2007-12-25"),
        ),
        // Microsoft: FormatDateTime(DateFromNum([pwdLastSet]),"yyyyMMddHHmmss.0Z") can be "20140905081453.0Z"
        (
            "FormatDateTime(DateFromNum([pwdLastSet]),\"yyyyMMddHHmmss.0Z\")",
            S("20140905081453.0Z"),
        ),
        (
            "FormatDateTime(CDate(\"2007-03-04 05:06:07\"), \"d/M/yy h:m:s tt\")",
            S("4/3/07 5:6:7 AM"),
        ),
        (
            "FormatDateTime(CDate(\"2007-03-04 15:06:07\"), \"dddd, MMMM dd 'at' hh:mm tt\")",
            S("Sunday, March 04 at 03:06 PM"),
        ),
        (
            "FormatDateTime(CDate(\"2007-03-04\"), \"ddd MMM\")",
            S("Sun Mar"),
        ),
        (
            "FormatDateTime(CDate(\"2007-03-04\"), \"s\")",
            S("2007-03-04T00:00:00"),
        ),
        (
            "FormatDateTime(CDate(\"2007-03-04\"), \"u\")",
            S("2007-03-04 00:00:00Z"),
        ),
        (
            "FormatDateTime(CDate(\"2007-03-04\"), \"o\")",
            S("2007-03-04T00:00:00.0000000Z"),
        ),
        (
            "FormatDateTime(CDate(\"2007-03-04\"), \"yyyy\\y\")",
            S("2007y"),
        ),
        ("FormatDateTime([missing], \"yyyy\")", Null),
        ("FormatDateTime([whenCreated], \"yyyy\")", S("2014")),
        ("FormatDateTime([cn], \"yyyy\")", E("not a date")),
        // Microsoft: DateAdd("m", 3, CDate("2001-01-01")) is 2001-04-01
        ("DateAdd(\"m\", 3, CDate(\"2001-01-01\"))", D(986_083_200)),
        (
            "FormatDateTime(DateAdd(\"m\", 1, CDate(\"2001-01-31\")), \"yyyy-MM-dd\")",
            S("2001-02-28"),
        ),
        (
            "FormatDateTime(DateAdd(\"yyyy\", 1, CDate(\"2004-02-29\")), \"yyyy-MM-dd\")",
            S("2005-02-28"),
        ),
        (
            "FormatDateTime(DateAdd(q, -1, CDate(\"2001-01-15\")), \"yyyy-MM-dd\")",
            S("2000-10-15"),
        ),
        (
            "FormatDateTime(DateAdd(\"d\", 1, CDate(\"2000-02-28\")), \"yyyy-MM-dd\")",
            S("2000-02-29"),
        ),
        (
            "FormatDateTime(DateAdd(\"ww\", 2, CDate(\"2000-12-25\")), \"yyyy-MM-dd\")",
            S("2001-01-08"),
        ),
        (
            "FormatDateTime(DateAdd(\"h\", 25, CDate(\"2000-01-01\")), \"yyyy-MM-dd HH\")",
            S("2000-01-02 01"),
        ),
        (
            "DateAdd(\"n\", 1, CDate(\"2000-01-01\")) > CDate(\"2000-01-01\")",
            B(true),
        ),
        ("DateAdd(\"s\", 9223372036854775807, Now())", E("outside")),
        ("DateAdd(\"yyyy\", 9000, Now())", E("outside")),
        ("DateAdd(\"d\", 1, [missing])", Null),
        ("CDate(\"2001-01-01\") < Now()", B(true)),
    ]);
}

// ---- directory -----------------------------------------------------------------------------

#[test]
fn directory_functions() {
    let mut joe = user();
    joe.dn = Some(Dn::parse("cn=Joe,ou=Atlanta,ou=GA,ou=US, dc=contoso,dc=com").unwrap());
    let check = |text: &str, want: X| assert_eq!(eval_on(text, &joe), expected(&want), "{text}");
    // Microsoft: DNComponent(CRef([dn]),1) returns Joe
    check("DNComponent(CRef([dn]),1)", S("Joe"));
    // Microsoft: DNComponentRev(CRef([dn]),3) and DNComponentRev(CRef([dn]),1,"DC") both return US
    check("DNComponentRev(CRef([dn]),3)", S("US"));
    check("DNComponentRev(CRef([dn]),1,\"DC\")", S("US"));
    check("DNComponentRev(CRef([dn]),1,DC)", S("US"));
    check("DNComponentRev([dn],1)", S("com"));
    check("DNComponent([dn],2)", S("Atlanta"));
    check("DNComponent([dn],7)", Null);
    check("DNComponent([dn],0)", Null);
    check("DNComponentRev([dn],0)", Null);
    check("DNComponentRev([dn],99)", Null);
    check("DNComponent([missing],1)", Null);
    check("DNComponent([manager],1)", S("Boss, Big"));
    table(&[
        ("DNComponent([dn],1)", S("Jürgen Ørsted")),
        ("DNComponent(\"no dn here\",1)", E("DNComponent")),
        // Microsoft: EscapeDNComponent("cn=" & [displayName]) & "," & %ForestLDAP%
        (
            "EscapeDNComponent(\"cn=\" & [manager])",
            S("cn=CN\\=Boss\\\\\\, Big\\,OU\\=Atlanta\\,DC\\=contoso\\,DC\\=com"),
        ),
        (
            "EscapeDNComponent(\"cn=Smith, Ann\") & \",ou=x\"",
            S("cn=Smith\\, Ann,ou=x"),
        ),
        ("EscapeDNComponent(\"Smith, Ann\")", S("Smith\\, Ann")),
        (
            "EscapeDNComponent(\"cn=\" & [displayName])",
            S("cn=Jürgen Ørsted"),
        ),
        ("EscapeDNComponent(\"cn= lead\")", S("cn=\\ lead")),
        ("EscapeDNComponent(\"#1\")", S("\\#1")),
        ("EscapeDNComponent([missing])", Null),
    ]);
}

// ---- text ----------------------------------------------------------------------------------

#[test]
fn text_case_and_trim() {
    table(&[
        // Microsoft: LCase("TeSt") = "test", UCase("TeSt") = "TEST"
        ("LCase(\"TeSt\")", S("test")),
        ("UCase(\"TeSt\")", S("TEST")),
        ("LCase([displayName])", S("jürgen ørsted")),
        ("UCase([displayName])", S("JÜRGEN ØRSTED")),
        ("UCase([cn])", S("山田 太郎")),
        ("LCase([missing])", Null),
        ("UCase(\"\")", S("")),
        ("LCase([objectGUID])", E("binary")),
        // Microsoft: PCase("TEsT") = "Test"; PCase(LCase("TEST")) = "Test"
        ("PCase(\"TEsT\")", S("Test")),
        ("PCase(LCase(\"TEST\"))", S("Test")),
        ("PCase(\"TEST\")", S("TEST")),
        ("ProperCase(\"jürgen øRSTED\")", S("Jürgen Ørsted")),
        ("PCase(\"  two  spaces \")", S("  Two  Spaces ")),
        ("PCase([cn])", S("山田 太郎")),
        ("PCase([missing])", Null),
        // Microsoft: Trim(" Test ") = "Test", LTrim(" Test ") = "Test ", RTrim(" Test ") = " Test"
        ("Trim(\" Test \")", S("Test")),
        ("LTrim(\" Test \")", S("Test ")),
        ("RTrim(\" Test \")", S(" Test")),
        ("Trim([padded])", S("Test")),
        ("Trim(\"\u{3000}山田\u{3000}\")", S("山田")),
        ("Trim(\"\")", S("")),
        ("Trim([missing])", Null),
        ("LTrim([missing])", Null),
        ("RTrim([missing])", Null),
        ("Trim([userAccountControl])", S("514")),
    ]);
}

#[test]
fn text_slicing() {
    table(&[
        // Microsoft: Left("John Doe", 3) = "Joh"
        ("Left(\"John Doe\", 3)", S("Joh")),
        ("Left(\"John Doe\", 0)", S("")),
        ("Left(\"John Doe\", -1)", S("John Doe")),
        ("Left(\"John Doe\", 99)", S("John Doe")),
        ("Left([missing], 3)", S("")), // Microsoft: "If string is null, return empty string"
        ("Left([givenName], 2)", S("Jü")),
        ("Left([cn], 1)", S("山")),
        ("Left([givenName], [missing])", Null),
        // Microsoft: Right("John Doe", 3) = "Doe"
        ("Right(\"John Doe\", 3)", S("Doe")),
        ("Right(\"John Doe\", 0)", S("")),
        ("Right(\"John Doe\", -2)", S("John Doe")),
        ("Right(\"John Doe\", 50)", S("John Doe")),
        ("Right([missing], 3)", S("")),
        ("Right([sn], 3)", S("ted")),
        ("Right([cn], 2)", S("太郎")),
        // Microsoft: Mid("John Doe", 3, 5) = "hn Do", Mid("John Doe", 6, 999) = "Doe"
        ("Mid(\"John Doe\", 3, 5)", S("hn Do")),
        ("Mid(\"John Doe\", 6, 999)", S("Doe")),
        ("Mid(\"John Doe\", 3, 0)", S("")),
        ("Mid(\"John Doe\", 3, -1)", S("John Doe")),
        ("Mid(\"John Doe\", 0, 2)", S("John Doe")),
        ("Mid(\"John Doe\", 9, 2)", S("John Doe")),
        ("Mid(\"John Doe\", 6)", S("Doe")),
        ("Mid([missing], 1, 2)", S("")),
        ("Mid([displayName], 2, 5)", S("ürgen")),
        ("Mid([cn], 4, 1)", S("太")),
        ("Mid(\"abc\", 2, 9223372036854775807)", S("bc")),
        // Microsoft: Len("John Doe") = 8
        ("Len(\"John Doe\")", N(8)),
        ("Len([displayName])", N(13)),
        ("Len([cn])", N(5)),
        ("Len(\"\")", N(0)),
        ("Len([missing])", Null),
        ("Len([userAccountControl])", N(3)),
        // Microsoft: Word("The quick brown fox",3," ") = "brown"
        ("Word(\"The quick brown fox\",3,\" \")", S("brown")),
        // Microsoft: Word("This,string!has&many separators",3,",!&#") = "has"
        (
            "Word(\"This,string!has&many separators\",3,\",!&#\")",
            S("has"),
        ),
        ("Word(\"The quick brown fox\",5,\" \")", S("")),
        ("Word(\"The quick brown fox\",0,\" \")", S("")),
        ("Word([missing],1,\" \")", S("")),
        ("Word(\"a  b\",2,\" \")", S("b")),
        ("Word([displayName],2,\" \")", S("Ørsted")),
        ("Word(\"山田・太郎\",2,\"・\")", S("太郎")),
        ("Word(\"abc\",1,\"\")", S("abc")),
    ]);
}

#[test]
fn text_padding() {
    table(&[
        // Microsoft: PadLeft("User", 10, "0") = "000000User", PadRight(...) = "User000000"
        ("PadLeft(\"User\", 10, \"0\")", S("000000User")),
        ("PadRight(\"User\", 10, \"0\")", S("User000000")),
        ("PadLeft(\"User\", 2, \"0\")", S("User")),
        ("PadLeft(\"User\", -5, \"0\")", S("User")),
        ("PadLeft([missing], 3, \"0\")", S("000")),
        ("PadRight([missing], 0, \"0\")", S("")),
        ("PadLeft([givenName], 8, \"·\")", S("··Jürgen")),
        ("PadRight([cn], 7, \"。\")", S("山田 太郎。。")),
        ("PadLeft(\"a\", 3, \" \")", S("  a")),
        ("PadLeft(\"a\", 3, [missing])", E("cannot be null")),
        ("PadLeft(\"a\", 3, [givenName])", E("exactly one character")),
        ("PadLeft(\"a\", 100000, \"x\")", E("65536")),
        ("Len(PadLeft(\"a\", 65536, \"x\"))", N(65536)),
        ("PadLeft(\"a\", [missing], \"x\")", Null),
    ]);
}

#[test]
fn text_search_and_replace() {
    table(&[
        // Microsoft: InStr("The quick brown fox","quick") = 5
        ("InStr(\"The quick brown fox\",\"quick\")", N(5)),
        // Microsoft: InStr("repEated","e",3,vbBinaryCompare) = 7
        ("InStr(\"repEated\",\"e\",3,vbBinaryCompare)", N(7)),
        ("InStr(\"repEated\",\"e\",3,vbTextCompare)", N(4)),
        ("InStr(\"repEated\",\"x\")", N(0)),
        ("InStr(\"abc\",\"\")", N(1)),
        ("InStr(\"abc\",\"c\", 9)", N(0)),
        ("InStr(\"abc\",\"a\", -3)", N(1)),
        ("InStr([displayName],\"Ørsted\")", N(8)),
        ("InStr([cn],\"太郎\")", N(4)),
        ("InStr([displayName],\"ørsted\",1,vbTextCompare)", N(8)),
        ("InStr([missing],\"a\")", Null),
        ("InStr(\"abc\",[missing])", Null),
        // Microsoft: InStrRev("abbcdbbbef","bb") = 7
        ("InStrRev(\"abbcdbbbef\",\"bb\")", N(7)),
        ("InStrRev(\"abbcdbbbef\",\"bb\",6)", N(2)),
        ("InStrRev(\"abbcdbbbef\",\"bb\",-1)", N(7)),
        ("InStrRev(\"abbcdbbbef\",\"BB\",-1,vbTextCompare)", N(7)),
        ("InStrRev(\"abbcdbbbef\",\"x\")", N(0)),
        ("InStrRev([cn],\"田\")", N(2)),
        ("InStrRev([missing],\"a\")", Null),
        // Microsoft: Replace([address],"\r\n",", ") → "One Microsoft Way, Redmond, WA, USA"
        (
            "Replace([address],\"\\r\\n\",\", \")",
            S("One Microsoft Way, Redmond, WA, USA"),
        ),
        ("Replace(\"a-b-c\",\"-\",\"\")", S("abc")),
        ("Replace(\"aaa\",\"a\",\"bb\")", S("bbbbbb")),
        ("Replace(\"abc\",\"\",\"x\")", S("abc")),
        ("Replace(\"a b\",\" \",\"\\t\")", S("a\tb")),
        ("Replace([displayName],\"ü\",\"ue\")", S("Juergen Ørsted")),
        ("Replace([missing],\"a\",\"b\")", Null),
        ("Replace(\"abc\",\"b\",[missing])", S("ac")),
        // Microsoft: ReplaceChars("Räksmörgås",%ReplaceString%) = "Raksmorgas", with
        // %ReplaceString% = ’:,Å:A,Ä:A,Ö:O,å:a,ä:a,ö,o — its last entry read as ö:o.
        (
            "ReplaceChars(\"Räksmörgås\",\"’:,Å:A,Ä:A,Ö:O,å:a,ä:a,ö:o\")",
            S("Raksmorgas"),
        ),
        // Microsoft: ReplaceChars("O’Neil",%ReplaceString%) = "ONeil"
        (
            "ReplaceChars(\"O’Neil\",\"’:,Å:A,Ä:A,Ö:O,å:a,ä:a,ö:o\")",
            S("ONeil"),
        ),
        (
            "ReplaceChars([displayName],\"ü:ue, Ø:Oe\")",
            S("Juergen Oersted"),
        ),
        ("ReplaceChars(\"straße\",\"ß:ss\")", S("strasse")),
        ("ReplaceChars([missing],\"a:b\")", Null),
        ("ReplaceChars(\"abc\",[givenName])", E("has no ':'")),
    ]);
}

// ---- scope filters and API -----------------------------------------------------------------

#[test]
fn api_surface() {
    let ctx = CompileContext::default();
    let e = Expr::compile("IIF(IsPresent([Mail]), [mail] & [sn], [dn])", &ctx).unwrap();
    assert_eq!(e.text(), "IIF(IsPresent([Mail]), [mail] & [sn], [dn])");
    assert_eq!(
        e.attributes(),
        vec![AttrName::new("mail"), AttrName::new("sn")]
    );
    assert!(e.reads_dn());
    assert!(!e.is_boolean());
    for (text, boolean) in [
        ("[a] = 1", true),
        ("IsPresent([a])", true),
        ("IIF([a], True, NULL)", true),
        (
            "CBool(IIF(IsPresent([x]),BitAnd([x],&H21C07000) > 0,NULL))",
            true,
        ),
        ("[a]", false),
        ("IIF([a], True, 1)", false),
        ("Len([a])", false),
    ] {
        assert_eq!(
            Expr::compile(text, &ctx).unwrap().is_boolean(),
            boolean,
            "{text}"
        );
    }
    let u = user();
    let b = |t: &str| Expr::compile(t, &ctx).unwrap().eval_bool(&u, NOW);
    assert_eq!(b("[givenName] = \"Jürgen\""), Ok(true));
    assert_eq!(b("[missing] = 1"), Ok(false));
    assert_eq!(b("IIF(True, AuthoritativeNull, True)"), Ok(false));
    assert_eq!(b("IsString([spaced])"), Ok(true));
    assert_eq!(b("Error(\"bad\")"), Err("bad".to_string()));
    assert!(b("[givenName]").is_err());
    // the attribute check
    let known = |name: &str| ["mail", "sn"].contains(&name.to_ascii_lowercase().as_str());
    let strict = CompileContext {
        attributes: Some(&known),
    };
    assert!(Expr::compile("[MAIL] & [sn]", &strict).is_ok());
    let err = Expr::compile("[mail] & [snn]", &strict).unwrap_err();
    assert_eq!(err.offset, 9);
    assert!(err.message.contains("[snn]"));
    // Display of errors is 1-based and carries the hint.
    let err = Expr::compile("Lefft([cn], 2)", &ctx).unwrap_err();
    assert_eq!(
        err.to_string(),
        "column 1: unknown function Lefft (hint: did you mean Left?)"
    );
    // Clone + Debug, and the Outcome of an empty object
    let e2 = e.clone();
    assert!(format!("{e2:?}").contains("IIF"));
    assert_eq!(e.eval(&empty(), NOW), Outcome::Values(ValueSet::new()));
}

// ---- compile errors ------------------------------------------------------------------------

#[test]
fn compile_errors_have_exact_offsets() {
    let ctx = CompileContext::default();
    let cases: &[(&str, usize, &str, Option<&str>)] = &[
        (
            "Left([cn], \"x\")",
            11,
            "argument 2 should be a number, found a string",
            Some("CNum"),
        ),
        (
            "Lefft([cn], 2)",
            0,
            "unknown function Lefft",
            Some("did you mean Left?"),
        ),
        (
            "UCase([cn]) & Trimm([sn])",
            14,
            "unknown function Trimm",
            Some("Trim"),
        ),
        (
            "Left([cn])",
            9,
            "Left needs 2 arguments, got 1",
            Some("Left("),
        ),
        (
            "Left([cn], 1, 2)",
            14,
            "Left takes at most 2 arguments, got 3",
            None,
        ),
        ("Now(1)", 4, "Now takes at most 0 arguments", None),
        ("Mid([cn])", 8, "Mid needs at least 2 arguments", None),
        ("IIF(True, 1)", 11, "IIF needs 3 arguments", None),
        ("Switch(True, 1, False)", 21, "pairs", None),
        ("\"abc", 0, "unterminated string literal", None),
        ("[cn", 0, "unterminated attribute reference", None),
        ("[]", 0, "empty attribute name", None),
        ("Trim([cn]", 4, "unclosed '(' of Trim", None),
        ("(1 + 2", 0, "unclosed '('", None),
        ("1 + ", 4, "expected a value, found end of expression", None),
        (
            "1 2",
            2,
            "unexpected number after a complete expression",
            None,
        ),
        ("Trim([cn]))", 10, "unexpected ')'", None),
        ("Left([cn], 2,)", 13, "expected a value", Some("missing")),
        ("[cn] # 1", 5, "unexpected character '#'", None),
        (
            "givenName",
            0,
            "unknown name givenName",
            Some("[givenName]"),
        ),
        ("Trim", 0, "unknown name Trim", Some("Trim(...)")),
        ("Truee", 0, "unknown name Truee", Some("True")),
        ("$item", 0, "unknown variable $item", None),
        (
            "Select(item, [a], 1)",
            7,
            "first argument must be a variable",
            None,
        ),
        ("Select($x, [a], $y)", 16, "unknown variable $y", None),
        ("Where($x, [a], \"yes\")", 15, "condition", None),
        ("Split([a], \";;\")", 11, "exactly one character", None),
        ("PadLeft([a], 3, \"ab\")", 16, "exactly one character", None),
        ("ReplaceChars([a], \"ab\")", 18, "has no ':'", None),
        ("CGuid(\"nope\")", 6, "is not a GUID", None),
        ("CDate(\"2001-02-30\")", 6, "not a date", None),
        (
            "Contains([a], \"x\", Sometimes)",
            19,
            "is not one of CaseSensitive, CaseInsensitive",
            None,
        ),
        ("InStr([a], \"x\", 1, vbFuzzy)", 19, "is not one of", None),
        (
            "DNComponentRev([dn], 1, \"OU\")",
            24,
            "is not one of DC",
            None,
        ),
        (
            "ConvertFromBase64([a], UTF16)",
            23,
            "is not one of Unicode, ASCII, UTF8",
            None,
        ),
        ("DateAdd(\"fortnight\", 1, Now())", 8, "is not one of", None),
        (
            "\"a\" + 1",
            0,
            "'+' needs numbers, found a string",
            Some("use &"),
        ),
        ("1 - True", 4, "'-' needs numbers, found a boolean", None),
        (
            "ConvertToBase64([a]) & CGuid([b])",
            23,
            "'&' cannot join binary",
            None,
        ),
        (
            "1 = \"a\" && \"b\"",
            11,
            "'&&' needs conditions, found a string",
            None,
        ),
        (
            "True = 1",
            7,
            "cannot compare a boolean with a number",
            None,
        ),
        (
            "StringFromGuid(ConvertFromBase64(\"AA==\") & \"\")",
            15,
            "should be binary",
            None,
        ),
        (
            "StringFromGuid(\"x\")",
            15,
            "should be binary, found a string",
            Some("CGuid"),
        ),
        (
            "FormatDateTime(Now(), \"q\")",
            22,
            "unknown standard date format",
            None,
        ),
        ("-\"a\"", 1, "'-' needs a number", None),
        ("!\"a\"", 1, "'!' needs a condition", None),
        ("%Domain.Netbios%", 0, "parameters", None),
        ("“text”", 0, "smart quote", None),
        ("99999999999999999999", 0, "number too large", None),
        ("12abc", 0, "malformed number", None),
        ("a | b", 2, "'|' on its own", None),
        ("Jürgen", 1, "unexpected character 'ü'", None),
        (
            "\"Jürgen\" & Lefft([cn], 1)",
            12,
            "unknown function Lefft",
            None,
        ),
    ];
    let mut failures = Vec::new();
    for (text, offset, msg, hint) in cases {
        match Expr::compile(text, &ctx) {
            Ok(_) => failures.push(format!("{text}: compiled")),
            Err(e) => {
                let hint_ok = hint.is_none_or(|h| e.hint.as_deref().is_some_and(|x| x.contains(h)));
                if e.offset != *offset || !e.message.contains(msg) || !hint_ok {
                    failures.push(format!(
                        "{text}: got {e:?}, want offset {offset} / {msg:?} / hint {hint:?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn deep_and_long_input_is_refused_not_overflowed() {
    let ctx = CompileContext::default();
    let deep = format!("{}[a]{}", "Trim(".repeat(200), ")".repeat(200));
    assert!(
        Expr::compile(&deep, &ctx)
            .unwrap_err()
            .message
            .contains("nests")
    );
    let parens = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(Expr::compile(&parens, &ctx).is_err());
    let chain = vec!["\"x\""; 5_000].join(" & ");
    assert!(
        Expr::compile(&chain, &ctx)
            .unwrap_err()
            .message
            .contains("too large")
    );
    let nots = format!("{}True", "!".repeat(5_000));
    assert!(Expr::compile(&nots, &ctx).is_err());
    // The deepest accepted shapes evaluate on a small (test-thread-sized) stack.
    let ok_deep = format!("{}[cn]{}", "Trim(".repeat(60), ")".repeat(60));
    let ok_chain = vec!["[cn]"; 150].join(" & ");
    let mixed = format!(
        "{}{}{}",
        "IIF(True, ".repeat(30),
        vec!["[proxyAddresses]"; 100].join(" & "),
        ", 1)".repeat(30)
    );
    let handle = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(move || {
            let u = user();
            for text in [ok_deep, ok_chain, mixed] {
                let e = Expr::compile(&text, &CompileContext::default()).unwrap();
                assert!(matches!(e.eval(&u, NOW), Outcome::Values(_)));
            }
        })
        .unwrap();
    handle.join().unwrap();
}

#[test]
fn work_is_bounded() {
    let mut obj = user();
    let many: ValueSet = (0..200).map(|i| st(&format!("v{i}"))).collect();
    obj.attrs.insert("many".into(), many.clone());
    obj.attrs.insert("many2".into(), many);
    let big = "x".repeat(600_000);
    obj.attrs.insert("big".into(), ValueSet::one(st(&big)));
    let cases = [
        ("[many] & [many2]", "values"), // 40,000 combinations
        ("[big] & [big]", "longer than"),
        ("Replace([big], \"x\", \"xx\")", "longer than"),
        ("ReplaceChars([big], \"x:yy\")", "longer than"),
        ("Join(Select($i, [many], [big]), \",\")", "longer than"),
        (
            "Split(PadLeft(\"\", 65536, \",\") & [big], \",\")",
            "values",
        ),
    ];
    for (text, msg) in cases {
        match eval_on(text, &obj) {
            Outcome::Error(m) => assert!(m.contains(msg), "{text}: {m}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    assert_eq!(eval_on("Count([many] & \"!\")", &obj), expected(&N(200)));
}

// ---- fuzz ----------------------------------------------------------------------------------

/// xorshift64*: a small deterministic generator, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn word(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }
}

const ATOMS: &[&str] = &[
    "[cn]",
    "[proxyAddresses]",
    "[objectGUID]",
    "[objectSid]",
    "[userAccountControl]",
    "[missing]",
    "[dn]",
    "[whenCreated]",
    "[manager]",
    "[memberOf]",
    "[description]",
    "[many]",
    "\"x\"",
    "\"\"",
    "\"Jürgen Ørsted\"",
    "\"山田\"",
    "\",\"",
    "\"a:b\"",
    "0",
    "1",
    "-1",
    "3",
    "&HFF",
    "9223372036854775807",
    "True",
    "False",
    "NULL",
    "CRLF",
    "$item",
    "AuthoritativeNull",
    "IgnoreThisFlow",
    "Now()",
    "\"2012-01-01\"",
    "\"{01234567-89ab-cdef-0123-456789abcdef}\"",
    "CaseInsensitive",
    "vbTextCompare",
    "UTF8",
    "\"DC\"",
    "\"m\"",
    "\"yyyy-MM-dd\"",
];
const OPS: &[&str] = &[
    " & ", " + ", " - ", " * ", " / ", " = ", " <> ", " < ", " >= ", " && ", " || ",
];

/// A random, mostly well-formed expression.
fn gen_expr(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 || rng.below(4) == 0 {
        return rng.word(ATOMS).to_string();
    }
    match rng.below(6) {
        0 => format!(
            "{}{}{}",
            gen_expr(rng, depth - 1),
            rng.word(OPS),
            gen_expr(rng, depth - 1)
        ),
        1 => format!("({})", gen_expr(rng, depth - 1)),
        2 => format!("!{}", gen_expr(rng, depth - 1)),
        3 => {
            let binder = rng.word(&["Select", "Where", "With"]);
            format!(
                "{binder}($item, {}, {})",
                gen_expr(rng, depth - 1),
                gen_expr(rng, depth - 1)
            )
        }
        _ => {
            let f = rng.pick(functions::FUNCS);
            let max = if f.variadic {
                f.min + 3
            } else {
                f.params.len()
            };
            let count = f.min + rng.below(max - f.min + 1);
            let args: Vec<String> = (0..count).map(|_| gen_expr(rng, depth - 1)).collect();
            format!("{}({})", f.name, args.join(", "))
        }
    }
}

/// Token soup with random characters mixed in.
fn gen_soup(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(14) + 1 {
        match rng.below(8) {
            0 => s.push_str(rng.pick(functions::FUNCS).name),
            1 => s.push_str(rng.word(&["(", ")", ",", "(", ")"])),
            2 => s.push_str(rng.word(OPS)),
            3 => {
                let chars = [
                    '"', '[', ']', '$', '&', 'H', '\\', '%', 'ü', '山', '\u{0}', '\n', '!', '|',
                    '9', '-', ' ', '{',
                ];
                s.push(*rng.pick(&chars));
            }
            4 => s.push(char::from_u32((rng.next() % 0x3000) as u32).unwrap_or('?')),
            _ => s.push_str(rng.word(ATOMS)),
        }
    }
    s
}

fn random_object(rng: &mut Rng) -> Obj {
    let mut obj = if rng.below(3) == 0 { empty() } else { user() };
    let names = [
        "cn",
        "proxyAddresses",
        "objectGUID",
        "userAccountControl",
        "many",
        "description",
        "whenCreated",
    ];
    for name in names {
        if rng.below(3) != 0 {
            continue;
        }
        let values: ValueSet = (0..rng.below(4))
            .map(|_| match rng.below(6) {
                0 => Value::Integer(rng.next() as i64),
                1 => Value::Binary((0..rng.below(20)).map(|_| rng.next() as u8).collect()),
                2 => Value::Boolean(rng.below(2) == 0),
                3 => Value::DateTime((rng.next() as i64) >> rng.below(64)),
                4 => st(&gen_soup(rng)),
                _ => st(rng.word(&[
                    "",
                    "a,b",
                    "Jürgen",
                    "CN=x,DC=y",
                    "12",
                    "{01234567-89ab-cdef-0123-456789abcdef}",
                ])),
            })
            .collect();
        obj.attrs.insert(name.to_ascii_lowercase(), values);
    }
    if rng.below(4) == 0 {
        obj.dn = None;
    }
    obj
}

#[test]
fn fuzz_compile_and_eval_never_panic() {
    // EXPR_FUZZ_ITERS / EXPR_FUZZ_SEED run longer or different campaigns by hand.
    let env_num = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let iters = env_num("EXPR_FUZZ_ITERS").unwrap_or(3_000);
    let mut rng = Rng(env_num("EXPR_FUZZ_SEED").unwrap_or(0x9E37_79B9_7F4A_7C15) | 1);
    let ctx = CompileContext::default();
    let (mut compiled, mut evaluated) = (0u64, 0u64);
    for i in 0..iters {
        let text = if i % 2 == 0 {
            gen_expr(&mut rng, 4)
        } else {
            gen_soup(&mut rng)
        };
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Expr::compile(&text, &ctx)));
        let Ok(result) = result else {
            panic!("compile panicked on {text:?}");
        };
        if let Ok(expr) = result {
            compiled += 1;
            for _ in 0..3 {
                let obj = random_object(&mut rng);
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    let _ = expr.eval_bool(&obj, NOW);
                    expr.eval(&obj, rng.next() as i64)
                }));
                assert!(r.is_ok(), "eval panicked on {text:?}");
                evaluated += 1;
            }
        }
    }
    eprintln!("fuzz: {iters} expressions, {compiled} compiled, {evaluated} evaluations");
    // The generator must exercise evaluation, not only the error paths.
    assert!(compiled * 5 > iters, "only {compiled} of {iters} compiled");
    assert!(evaluated >= compiled * 3);
}

#[test]
fn every_function_is_covered_by_a_table() {
    // Guards against adding a function without tests: each name appears in this file.
    let me = include_str!("tests.rs");
    for f in functions::FUNCS {
        assert!(
            me.contains(&format!("{}(", f.name)),
            "no test calls {}",
            f.name
        );
    }
}
