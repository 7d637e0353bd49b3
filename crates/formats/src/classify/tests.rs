use super::*;

fn classify(method: &str, target: &str, ua: Option<&str>, depth: Option<Depth>) -> HttpClass {
    let c = Classifier::default();
    let req = HttpRequest {
        method: Some(method.as_bytes()),
        target: target.as_bytes(),
        depth,
        user_agent: ua.map(str::as_bytes),
    };
    c.classify_http(&req, &mut UaCache::default())
}

#[test]
fn the_shipped_route_table() {
    use Operation::*;
    let cases = [
        ("GET", "/api/rest/v1/folders/reports%202024?per_page=100&cursor=abc%3D", List, Some("/reports 2024")),
        ("GET", "/api/rest/v1/folders/", List, Some("/")),
        ("GET", "/api/rest/v1/folders", List, Some("/")),
        ("GET", "/api/rest/v1/files/a/b.csv", Read, Some("/a/b.csv")),
        ("POST", "/api/rest/v1/file_actions/begin_upload/in/x.csv", Write, Some("/in/x.csv")),
        ("POST", "/api/rest/v1/files/in/x.csv", Write, Some("/in/x.csv")),
        ("DELETE", "/api/rest/v1/files/in/x.csv", Delete, Some("/in/x.csv")),
        ("POST", "/api/rest/v1/file_actions/move/in/x.csv", Move, Some("/in/x.csv")),
        ("POST", "/api/rest/v1/file_actions/copy/in/x.csv", Copy, Some("/in/x.csv")),
        ("GET", "/api/rest/v1/file_actions/metadata/in/x.csv", Stat, Some("/in/x.csv")),
        ("POST", "/api/rest/v1/folders/new/dir", Mkdir, Some("/new/dir")),
        ("POST", "/api/rest/v1/sessions", Login, None),
        ("post", "/api/rest/v1/sessions/", Login, None),
        ("GET", "/api/rest/v1/users", Other, Some("/api/rest/v1/users")),
        ("PATCH", "/api/rest/v1/files/x", Other, Some("/api/rest/v1/files/x")),
    ];
    for (m, t, op, path) in cases {
        let c = classify(m, t, None, None);
        assert_eq!((c.interface, c.operation, c.path.as_deref()), (Interface::Rest, op, path), "{m} {t}");
    }
    assert_eq!(classify("GET", "/api/rest/v1/folders/r?cursor=abc%3D", None, None).cursor.as_deref(), Some("abc="));
    assert_eq!(classify("GET", "/api/rest/v1/folders/r?per_page=1", None, None).cursor, None);
    assert_eq!(classify("GET", "https://acme.example.com/api/rest/v1/files/a", None, None).path.as_deref(), Some("/a"));
}

#[test]
fn webdav_by_method_root_and_agent() {
    use Operation::*;
    let c = classify("PROPFIND", "/dav/reports/", None, Some(Depth::One));
    assert_eq!((c.interface, c.operation, c.path.as_deref()), (Interface::Webdav, List, Some("/reports/")));
    assert_eq!(classify("PROPFIND", "/dav/a.txt", None, Some(Depth::Zero)).operation, Stat);
    assert_eq!(classify("PROPFIND", "/dav/folder/", None, None).operation, List);
    assert_eq!(classify("PROPFIND", "/dav/a.txt", None, None).operation, Stat);
    assert_eq!(classify("PROPFIND", "/other/", None, Some(Depth::Infinity)).path.as_deref(), Some("/other/"));
    let c = classify("GET", "/dav/My%20Docs/a.txt", None, None);
    assert_eq!((c.interface, c.operation, c.path.as_deref()), (Interface::Webdav, Read, Some("/My Docs/a.txt")));
    assert_eq!(classify("GET", "/dav", None, None).path.as_deref(), Some("/"));
    for (m, op) in [("HEAD", Stat), ("PUT", Write), ("DELETE", Delete), ("MKCOL", Mkdir), ("MOVE", Move)] {
        assert_eq!(classify(m, "/webdav/x", None, None).operation, op, "{m}");
    }
    assert_eq!(classify("COPY", "/x", None, None).operation, Copy);
    assert_eq!(classify("LOCK", "/x", None, None).interface, Interface::Webdav);
    assert_eq!(classify("PROPPATCH", "/dav/x", None, None).operation, Other);
    let c = classify("GET", "/files/a.txt", Some("Microsoft-WebDAV-MiniRedir/10.0.19045"), None);
    assert_eq!((c.interface, c.operation), (Interface::Webdav, Read));
}

#[test]
fn user_agents_pick_the_interface() {
    let ua = |s: &str| classify("GET", "/api/rest/v1/files/a", Some(s), None).interface;
    assert_eq!(ua("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"), Interface::Web);
    assert_eq!(ua("curl/8.5.0"), Interface::Sdk);
    assert_eq!(ua("Files.com Ruby SDK v1.1.2"), Interface::Sdk);
    assert_eq!(ua("Mozilla/5.0 (Windows NT 10.0) Files.com Desktop/2024.1 Electron/28"), Interface::Desktop);
    assert_eq!(ua("Files.com iOS/3.2 CFNetwork"), Interface::Mobile);
    assert_eq!(ua("Mozilla/5.0 (Windows NT; Windows NT 10.0) WindowsPowerShell/5.1"), Interface::Sdk);
    assert_eq!(ua("SomethingElse/1"), Interface::Rest);
    assert_eq!(ua("-"), Interface::Rest);
    assert_eq!(ua("CURL/7"), Interface::Sdk, "any case");
}

#[test]
fn overrides_mark_mounts_and_integrations() {
    let cfg: ImportConfig = toml::from_str(
        r#"
            [[overrides]]
            network = "10.8.0.0/16"
            interface = "mount"
            integration = "nas-mount"
            [[overrides]]
            api_key = "key_zap"
            interface = "ipaas"
            integration = "zapier"
            [[overrides]]
            user = "guest"
            interface = "share"
            "#,
    )
    .unwrap();
    let c = Classifier::new(&cfg).unwrap();
    assert_eq!(cfg.routes, RouteTable::default(), "parts not given keep their defaults");
    let mut e = crate::testutil::event();
    e.client_ip = Some("::ffff:10.8.3.4".into());
    c.apply_overrides(&mut e);
    assert_eq!((e.interface, e.integration.as_deref()), (Interface::Mount, Some("nas-mount")));
    let mut e = crate::testutil::event();
    e.api_key = Some("key_zap".into());
    c.apply_overrides(&mut e);
    assert_eq!((e.interface, e.integration.as_deref()), (Interface::Ipaas, Some("zapier")));
    let mut e = crate::testutil::event();
    e.user = Some("guest".into());
    e.client_ip = Some("2001:db8::1".into());
    c.apply_overrides(&mut e);
    assert_eq!((e.interface, e.integration), (Interface::Share, None));
    let mut e = crate::testutil::event();
    e.client_ip = Some("10.9.0.1".into());
    c.apply_overrides(&mut e);
    assert_eq!(e.interface, Interface::Rest);
}

#[test]
fn bad_tables_are_refused() {
    let bad = [
        "[[overrides]]\ninterface = \"mount\"\n",
        "[[overrides]]\nuser = \"a\"\ninterface = \"rest\"\n",
        "[[routes]]\nmethod = \"GET\"\npattern = \"/a/{path}/b\"\noperation = \"list\"\n",
        "[[routes]]\nmethod = \"GET\"\npattern = \"a\"\noperation = \"list\"\n",
        "[[user_agents]]\ncontains = \"\"\ninterface = \"web\"\n",
        "[webdav]\nroots = [\"dav\"]\n",
    ];
    for b in bad {
        let cfg: ImportConfig = toml::from_str(b).unwrap();
        assert!(matches!(Classifier::new(&cfg), Err(Error::Config(_))), "{b}");
    }
    assert!(
        toml::from_str::<ImportConfig>("[[overrides]]\nnetwork = \"10.0.0.0/33\"\ninterface = \"mount\"\n").is_err()
    );
    assert!(
        toml::from_str::<ImportConfig>("[[routes]]\nmethod = \"GET\"\npattern = \"/\"\noperation = \"nap\"\n").is_err()
    );
}

#[test]
fn the_default_config_round_trips_through_toml() {
    let cfg = ImportConfig::default();
    let text = toml::to_string(&cfg).unwrap();
    assert_eq!(toml::from_str::<ImportConfig>(&text).unwrap(), cfg);
}

#[test]
fn networks() {
    let n: IpNetwork = "192.168.0.0/16".parse().unwrap();
    assert!(n.contains("192.168.200.1".parse().unwrap()));
    assert!(!n.contains("192.169.0.1".parse().unwrap()));
    assert!(!n.contains("2001:db8::1".parse().unwrap()));
    let all: IpNetwork = "0.0.0.0/0".parse().unwrap();
    assert!(all.contains("8.8.8.8".parse().unwrap()));
    let v6: IpNetwork = "2001:db8::/32".parse().unwrap();
    assert!(v6.contains("2001:db8:ffff::1".parse().unwrap()));
    assert_eq!("10.0.0.1".parse::<IpNetwork>().unwrap().to_string(), "10.0.0.1/32");
    assert!("nope/8".parse::<IpNetwork>().is_err());
}
