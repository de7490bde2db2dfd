//! The out-of-box rule set as data: every flow once, so that the rules the code generates and
//! the table in the README come from the same rows.
//!
//! Inbound rows read Active Directory attributes (LDAP display names) and write metaverse
//! attributes named as Azure AD Connect's metaverse names them. Outbound rows read those
//! metaverse attributes. An expression that is exactly `[attr]` becomes a direct attribute
//! flow (cheaper, and references pass through it unchanged).

/// Which AD object kinds a row applies to (bit set).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kinds(u8);

impl Kinds {
    /// `user` and `inetOrgPerson` objects → metaverse `person`.
    pub const USER: Kinds = Kinds(1);
    /// `contact` objects → metaverse `contact`.
    pub const CONTACT: Kinds = Kinds(2);
    /// `group` objects → metaverse `group`.
    pub const GROUP: Kinds = Kinds(4);
    /// `computer` objects → metaverse `device`.
    pub const DEVICE: Kinds = Kinds(8);
    const UC: Kinds = Kinds(1 | 2);
    const UCG: Kinds = Kinds(1 | 2 | 4);
    const UG: Kinds = Kinds(1 | 4);
    const UCGD: Kinds = Kinds(1 | 2 | 4 | 8);
    const UGD: Kinds = Kinds(1 | 4 | 8);
    const UD: Kinds = Kinds(1 | 8);

    /// Whether `self` includes every kind of `other`.
    pub fn has(self, other: Kinds) -> bool {
        self.0 & other.0 == other.0
    }

    /// Short labels for the README: "user, contact, group".
    pub fn label(self) -> String {
        [
            (Kinds::USER, "user"),
            (Kinds::CONTACT, "contact"),
            (Kinds::GROUP, "group"),
            (Kinds::DEVICE, "computer"),
        ]
        .iter()
        .filter(|(k, _)| self.has(*k))
        .map(|(_, l)| *l)
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// One inbound flow: AD → metaverse.
#[derive(Clone, Copy, Debug)]
pub struct InRow {
    /// The object kinds it applies to.
    pub kinds: Kinds,
    /// The metaverse attribute written.
    pub mv: &'static str,
    /// The expression; `{domain}` is replaced by the source's DNS domain, quoted.
    pub expr: &'static str,
}

const fn row(kinds: Kinds, mv: &'static str, expr: &'static str) -> InRow {
    InRow { kinds, mv, expr }
}

/// The sourceAnchor, as Azure AD Connect computes it with ms-DS-ConsistencyGuid as the
/// source anchor attribute: the consistency GUID where it is set, else objectGUID.
pub const SOURCE_ANCHOR_BINARY: &str =
    "IIF(IsPresent([mS-DS-ConsistencyGuid]), [mS-DS-ConsistencyGuid], [objectGUID])";

/// Inbound flows with an expression (the direct ones follow in [`DIRECT`]).
pub const INBOUND: &[InRow] = &[
    row(Kinds::UCGD, "sourceAnchorBinary", SOURCE_ANCHOR_BINARY),
    row(
        Kinds::UCGD,
        "sourceAnchor",
        "ConvertToBase64(IIF(IsPresent([mS-DS-ConsistencyGuid]), [mS-DS-ConsistencyGuid], [objectGUID]))",
    ),
    row(
        Kinds::USER,
        "userPrincipalName",
        "IIF(IsPresent([userPrincipalName]), [userPrincipalName], IIF(IsPresent([sAMAccountName]), [sAMAccountName] & \"@\" & {domain}, Error(\"AccountName is not present\")))",
    ),
    row(
        Kinds::UCGD,
        "displayName",
        "IIF(IsNullOrEmpty([displayName]), [cn], Trim([displayName]))",
    ),
    row(Kinds::UC, "givenName", "Trim([givenName])"),
    row(Kinds::UC, "sn", "Trim([sn])"),
    row(Kinds::UCG, "mail", "Trim([mail])"),
    row(
        Kinds::UCG,
        "proxyAddresses",
        "RemoveDuplicates(Trim([proxyAddresses]))",
    ),
    row(
        Kinds::UD,
        "accountEnabled",
        "IIF(BitAnd([userAccountControl], 2) = 0, True, False)",
    ),
    row(
        Kinds::USER,
        "usageLocation",
        "Coalesce([msExchUsageLocation], [c])",
    ),
    row(Kinds::UG, "domainFQDN", "{domain}"),
    row(
        Kinds::GROUP,
        "securityEnabled",
        "BitAnd([groupType], &H80000000) <> 0",
    ),
    row(
        Kinds::GROUP,
        "mailEnabled",
        "IsPresent([proxyAddresses]) || IsPresent([mail])",
    ),
    row(
        Kinds::GROUP,
        "groupScope",
        "IIF(BitAnd([groupType], 2) = 2, \"Global\", IIF(BitAnd([groupType], 4) = 4, \"DomainLocal\", IIF(BitAnd([groupType], 8) = 8, \"Universal\", NULL)))",
    ),
    // Entra's deviceId is the GUID without the braces StringFromGuid puts around it.
    row(
        Kinds::DEVICE,
        "deviceId",
        "Mid(StringFromGuid([objectGUID]), 2, 36)",
    ),
    row(Kinds::DEVICE, "deviceOSType", "[operatingSystem]"),
    row(Kinds::DEVICE, "deviceOSVersion", "[operatingSystemVersion]"),
    row(Kinds::DEVICE, "deviceTrustType", "\"ServerAd\""),
    row(
        Kinds::DEVICE,
        "registeredOwnerReference",
        "StringFromSid([mS-DS-CreatorSID])",
    ),
    row(
        Kinds::UGD,
        "onPremisesSecurityIdentifier",
        "StringFromSid([objectSid])",
    ),
    row(Kinds::UG, "accountName", "[sAMAccountName]"),
];

/// Attributes that flow unchanged (metaverse name = AD name), by object kinds.
pub const DIRECT: &[(Kinds, &[&str])] = &[
    (Kinds::UCGD, &["cn", "description"]),
    (Kinds::UGD, &["objectSid"]),
    (Kinds::UD, &["userCertificate"]),
    // The Exchange Online set shared by users, contacts and groups.
    (
        Kinds::UCG,
        &[
            "mailNickname",
            "extensionAttribute1",
            "extensionAttribute2",
            "extensionAttribute3",
            "extensionAttribute4",
            "extensionAttribute5",
            "extensionAttribute6",
            "extensionAttribute7",
            "extensionAttribute8",
            "extensionAttribute9",
            "extensionAttribute10",
            "extensionAttribute11",
            "extensionAttribute12",
            "extensionAttribute13",
            "extensionAttribute14",
            "extensionAttribute15",
            "info",
            "legacyExchangeDN",
            "authOrig",
            "unauthOrig",
            "dLMemRejectPerms",
            "dLMemSubmitPerms",
            "msDS-HABSeniorityIndex",
            "msDS-PhoneticDisplayName",
            "msExchExtensionCustomAttribute1",
            "msExchExtensionCustomAttribute2",
            "msExchExtensionCustomAttribute3",
            "msExchExtensionCustomAttribute4",
            "msExchExtensionCustomAttribute5",
            "msExchHideFromAddressLists",
            "msExchLitigationHoldDate",
            "msExchLitigationHoldOwner",
            "msExchModeratedByLink",
            "msExchModerationFlags",
            "msExchRecipientDisplayType",
            "msExchRecipientTypeDetails",
            "msExchRequireAuthToSendTo",
            "msExchRetentionComment",
            "msExchRetentionURL",
            "msExchSenderHintTranslations",
            "publicDelegates",
        ],
    ),
    // Users and contacts: names, organisation, telephones, address, manager.
    (
        Kinds::UC,
        &[
            "initials",
            "middleName",
            "company",
            "department",
            "title",
            "manager",
            "telephoneNumber",
            "otherTelephone",
            "mobile",
            "otherMobile",
            "homePhone",
            "otherHomePhone",
            "facsimileTelephoneNumber",
            "otherFacsimileTelephone",
            "pager",
            "otherPager",
            "ipPhone",
            "otherIpPhone",
            "telephoneAssistant",
            "streetAddress",
            "postOfficeBox",
            "l",
            "st",
            "postalCode",
            "c",
            "co",
            "countryCode",
            "physicalDeliveryOfficeName",
            "wWWHomePage",
            "url",
            "preferredLanguage",
            "targetAddress",
            "thumbnailPhoto",
            "userSMIMECertificate",
            "msExchAssistantName",
            "msExchBlockedSendersHash",
            "msExchSafeRecipientsHash",
            "msExchSafeSendersHash",
        ],
    ),
    // Users only: identity and the mailbox attributes.
    (
        Kinds::USER,
        &[
            "employeeID",
            "pwdLastSet",
            "altRecipient",
            "msExchArchiveGUID",
            "msExchArchiveName",
            "msExchAuditAdmin",
            "msExchAuditDelegate",
            "msExchAuditDelegateAdmin",
            "msExchAuditOwner",
            "msExchBypassAudit",
            "msExchDelegateListLink",
            "msExchELCExpirySuspensionEnd",
            "msExchELCExpirySuspensionStart",
            "msExchELCMailboxFlags",
            "msExchImmutableID",
            "msExchMailboxAuditEnable",
            "msExchMailboxAuditLogAgeLimit",
            "msExchMailboxGuid",
            "msExchRemoteRecipientType",
            "msExchResourceDisplay",
            "msExchResourceMetaData",
            "msExchResourceSearchProperties",
            "msExchTeamMailboxExpiration",
            "msExchTeamMailboxOwners",
            "msExchTeamMailboxSharePointUrl",
            "msExchUserHoldPolicies",
        ],
    ),
    (Kinds::UG, &["msExchEnableModeration"]),
    // Groups: type, members, owners, moderation.
    (
        Kinds::GROUP,
        &[
            "groupType",
            "member",
            "managedBy",
            "msExchCoManagedByLink",
            "msExchBypassModerationLink",
            "msOrg-IsOrganizational",
            "oOFReplyToOriginator",
            "reportToOriginator",
            "reportToOwner",
            "hideDLMembership",
        ],
    ),
    // Devices: the computer's host name.
    (Kinds::DEVICE, &["dNSHostName"]),
];

/// One outbound flow: metaverse → target attribute.
#[derive(Clone, Copy, Debug)]
pub struct OutRow {
    /// The target attribute (for SCIM, `{urn}` is the connector's extension URN).
    pub target: &'static str,
    /// The expression over metaverse attributes.
    pub expr: &'static str,
}

pub(super) const fn out(target: &'static str, expr: &'static str) -> OutRow {
    OutRow { target, expr }
}

/// LDAP person and contact flows, in the standard inetOrgPerson schema (RFC 2798, 4519):
/// nothing here needs a schema extension.
pub const LDAP_PERSON: &[OutRow] = &[
    out("cn", "Coalesce([cn], [displayName])"),
    out("sn", "Coalesce([sn], [displayName], [cn])"),
    out("givenName", "[givenName]"),
    out("displayName", "[displayName]"),
    out("initials", "[initials]"),
    out("mail", "[mail]"),
    out("title", "[title]"),
    out("departmentNumber", "[department]"),
    out("o", "[company]"),
    out("telephoneNumber", "[telephoneNumber]"),
    out("mobile", "[mobile]"),
    out("facsimileTelephoneNumber", "[facsimileTelephoneNumber]"),
    out("homePhone", "[homePhone]"),
    out("pager", "[pager]"),
    out("street", "[streetAddress]"),
    out("l", "[l]"),
    out("st", "[st]"),
    out("postalCode", "[postalCode]"),
    out("postOfficeBox", "[postOfficeBox]"),
    out("physicalDeliveryOfficeName", "[physicalDeliveryOfficeName]"),
    out("labeledURI", "[wWWHomePage]"),
    out("preferredLanguage", "[preferredLanguage]"),
    out("description", "[description]"),
    out("manager", "[manager]"),
    out("jpegPhoto", "[thumbnailPhoto]"),
];

/// LDAP flows for users only (on top of [`LDAP_PERSON`]).
pub const LDAP_USER: &[OutRow] = &[
    out("uid", "[accountName]"),
    out("employeeNumber", "[employeeID]"),
];

/// LDAP group flows (groupOfNames).
pub const LDAP_GROUP: &[OutRow] = &[
    out("cn", "[cn]"),
    out("description", "[description]"),
    out("member", "[member]"),
    out("owner", "[managedBy]"),
    out(
        "businessCategory",
        "IIF([securityEnabled] = True, \"Security\", \"Distribution\") & IIF(IsPresent([groupScope]), \" \" & [groupScope], \"\")",
    ),
];

/// LDAP device flows (the `device` class of RFC 4519).
pub const LDAP_DEVICE: &[OutRow] = &[
    out("cn", "[cn]"),
    out("serialNumber", "[deviceId]"),
    out(
        "description",
        "Trim([deviceOSType] & \" \" & [deviceOSVersion])",
    ),
];

/// The SCIM enterprise extension's schema URN.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// SCIM user flows, named as Entra ID's SCIM mappings name them. `{ent}` is the enterprise
/// extension URN, `{urn}` the connector's own extension URN.
pub const SCIM_USER: &[OutRow] = &[
    out("externalId", "[sourceAnchor]"),
    out("userName", "[userPrincipalName]"),
    out("active", "[accountEnabled]"),
    out("displayName", "[displayName]"),
    out("nickName", "[mailNickname]"),
    out("title", "[title]"),
    out("preferredLanguage", "[preferredLanguage]"),
    out("name.givenName", "[givenName]"),
    out("name.familyName", "[sn]"),
    out("name.formatted", "Trim([givenName] & \" \" & [sn])"),
    out("emails[type eq \"work\"].value", "[mail]"),
    out("phoneNumbers[type eq \"work\"].value", "[telephoneNumber]"),
    out("phoneNumbers[type eq \"mobile\"].value", "[mobile]"),
    out(
        "phoneNumbers[type eq \"fax\"].value",
        "[facsimileTelephoneNumber]",
    ),
    out(
        "addresses[type eq \"work\"].streetAddress",
        "[streetAddress]",
    ),
    out("addresses[type eq \"work\"].locality", "[l]"),
    out("addresses[type eq \"work\"].region", "[st]"),
    out("addresses[type eq \"work\"].postalCode", "[postalCode]"),
    out("addresses[type eq \"work\"].country", "[c]"),
    out("{ent}:employeeNumber", "[employeeID]"),
    out("{ent}:department", "[department]"),
    out("{ent}:organization", "[company]"),
    out("{ent}:manager", "[manager]"),
    out("{urn}:proxyAddresses", "[proxyAddresses]"),
    out("{urn}:extensionAttribute1", "[extensionAttribute1]"),
    out("{urn}:extensionAttribute2", "[extensionAttribute2]"),
    out("{urn}:extensionAttribute3", "[extensionAttribute3]"),
    out("{urn}:extensionAttribute4", "[extensionAttribute4]"),
    out("{urn}:extensionAttribute5", "[extensionAttribute5]"),
    out("{urn}:extensionAttribute6", "[extensionAttribute6]"),
    out("{urn}:extensionAttribute7", "[extensionAttribute7]"),
    out("{urn}:extensionAttribute8", "[extensionAttribute8]"),
    out("{urn}:extensionAttribute9", "[extensionAttribute9]"),
    out("{urn}:extensionAttribute10", "[extensionAttribute10]"),
    out("{urn}:extensionAttribute11", "[extensionAttribute11]"),
    out("{urn}:extensionAttribute12", "[extensionAttribute12]"),
    out("{urn}:extensionAttribute13", "[extensionAttribute13]"),
    out("{urn}:extensionAttribute14", "[extensionAttribute14]"),
    out("{urn}:extensionAttribute15", "[extensionAttribute15]"),
];

/// SCIM group flows.
pub const SCIM_GROUP: &[OutRow] = &[
    out("externalId", "[sourceAnchor]"),
    out("displayName", "[displayName]"),
    out("members", "[member]"),
];
