//! The frame around every page: head, skip link, navigation, who is signed
//! in and the sign-out form, and the main landmark that the page fills.
//!
//! The navigation lists the account's sections: usage, the request log, the
//! audit, and webhooks and alerts (whose two pages have their own
//! sub-navigation); the operator and support also get every account.

use super::assets;
use super::viewer::Viewer;
use maud::{html, Markup, DOCTYPE};

/// The sections of an account's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Usage against the plan.
    Usage,
    /// The request log.
    Calls,
    /// The audit's findings.
    Audit,
    /// Webhooks and alerts.
    Webhooks,
    /// Every account (operator view).
    Accounts,
    /// Pages of no section (sign-in).
    None,
}

impl Section {
    fn label(self) -> &'static str {
        match self {
            Section::Usage => "Usage",
            Section::Calls => "Request log",
            Section::Audit => "Audit",
            Section::Webhooks => "Webhooks and alerts",
            Section::Accounts => "All accounts",
            Section::None => "",
        }
    }

    /// The page of this section for an account; `None` for no page.
    fn href(self, account: &str) -> Option<String> {
        let account = urlencode(account);
        match self {
            Section::Usage => Some(format!("/accounts/{account}/usage")),
            Section::Calls => Some(format!("/accounts/{account}/calls")),
            Section::Audit => Some(format!("/accounts/{account}/audit")),
            Section::Webhooks => Some(format!("/accounts/{account}/webhooks")),
            Section::Accounts => Some("/accounts".into()),
            Section::None => None,
        }
    }
}

/// What the frame shows around a page.
pub struct Frame<'a> {
    /// The page's title (also its first heading's text, usually).
    pub title: String,
    /// Who is signed in; none on the sign-in page and on shared pages.
    pub viewer: Option<&'a Viewer>,
    /// The account the page is about, if any.
    pub account: Option<&'a str>,
    /// The section to mark current.
    pub section: Section,
}

/// A whole page: the frame with `body` in its main landmark.
pub fn page(frame: Frame<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (frame.title) " · callmeter" }
                link rel="stylesheet" href=(assets::STYLESHEET);
                link rel="icon" href=(assets::ICON) type="image/svg+xml";
                script src=(assets::SCRIPT) defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/" { "callmeter" }
                    @if let Some(viewer) = frame.viewer {
                        (navigation(viewer, frame.account, frame.section))
                        div class="who" {
                            span { "Signed in as " strong { (viewer.describe()) } }
                            form method="post" action="/sign-out" {
                                input type="hidden" name="csrf" value=(viewer.csrf);
                                button type="submit" class="link-button" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (body) }
            }
        }
    }
}

fn navigation(viewer: &Viewer, account: Option<&str>, current: Section) -> Markup {
    html! {
        nav aria-label="Sections" {
            ul {
                @if viewer.sees_every_account() {
                    (nav_item(Section::Accounts, "", current))
                }
                @if let Some(account) = account {
                    @for section in [Section::Usage, Section::Calls, Section::Audit, Section::Webhooks] {
                        (nav_item(section, account, current))
                    }
                }
            }
        }
    }
}

fn nav_item(section: Section, account: &str, current: Section) -> Markup {
    html! {
        li {
            @if let Some(href) = section.href(account) {
                a href=(href) aria-current=[(section == current).then_some("page")] { (section.label()) }
            }
        }
    }
}

/// A path segment or query value, percent-encoded (account names are plain, paths and filters are not).
pub fn urlencode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query string from pairs, leaving out empty values.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> =
        pairs.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| format!("{k}={}", urlencode(v))).collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_encoded() {
        assert_eq!(urlencode("acme.eu-1"), "acme.eu-1");
        assert_eq!(urlencode("/a b&c=d"), "%2Fa%20b%26c%3Dd");
        assert_eq!(query(&[("a", "1"), ("b", ""), ("c", "x y")]), "?a=1&c=x%20y");
        assert_eq!(query(&[("a", "")]), "");
    }

    #[test]
    fn every_section_is_linked_and_the_current_one_marked() {
        assert_eq!(Section::Webhooks.href("acme").as_deref(), Some("/accounts/acme/webhooks"));
        assert_eq!(Section::Calls.href("acme").as_deref(), Some("/accounts/acme/calls"));
        let viewer = Viewer { caller: crate::auth::Caller::Support, session_id: "s".into(), csrf: "c".into() };
        let nav = navigation(&viewer, Some("acme"), Section::Usage).into_string();
        assert!(nav.contains("href=\"/accounts\""), "support sees every account: {nav}");
        assert!(nav.contains("aria-current=\"page\""));
        assert!(nav.contains("href=\"/accounts/acme/webhooks\">Webhooks and alerts"), "{nav}");
    }
}
