use super::*;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

/// Go rpcx's `TestHTTPRequest2RpcxRequest` (server/converter_test.go).
#[test]
fn go_converter_test_case() {
    let h = headers(&[
        (X_MESSAGE_ID, "10000"),
        (X_HEARTBEAT, "0"),
        (X_ONEWAY, "0"),
        (X_SERIALIZE_TYPE, "3"),
        (X_META, "Meta"),
        ("Authorization", "Authorization"),
        (X_SERVICE_PATH, "ProxyServer"),
        (X_SERVICE_METHOD, "GetAdData"),
    ]);
    let m = invoke_request(&h, "/", Bytes::from_static(b"\x82")).unwrap();
    assert_eq!(m.metadata.get(keys::AUTH), Some("Authorization"));
    assert_eq!(m.metadata.get("Meta"), Some(""));
    assert_eq!(&*m.service_path, "ProxyServer");
    assert_eq!(&*m.service_method, "GetAdData");
    assert_eq!(m.header.seq(), 10000);
    // Go sets the bits for any non-empty value, "0" included.
    assert!(m.header.is_heartbeat());
    assert!(m.header.is_oneway());
    assert_eq!(m.header.serialize_type(), SerializeType::MSGPACK);
    assert_eq!(m.header.message_type(), MessageType::Request);
    assert_eq!(&m.payload[..], b"\x82");
}

#[test]
fn service_path_from_the_url_and_gzip_from_content_encoding() {
    let h = headers(&[
        (X_SERIALIZE_TYPE, "1"),
        (X_SERVICE_METHOD, "Mul"),
        ("Content-Encoding", "gzip"),
        (X_MESSSAGE_TYPE, "0"),
    ]);
    let m = invoke_request(&h, "/Arith", Bytes::new()).unwrap();
    assert_eq!(&*m.service_path, "Arith");
    assert_eq!(m.header.compress_type(), CompressType::GZIP);
    assert!(!m.header.is_oneway());
}

#[test]
fn bad_headers_name_themselves() {
    let cases = [
        (vec![(X_SERVICE_METHOD, "Mul")], X_SERIALIZE_TYPE),
        (
            vec![(X_SERIALIZE_TYPE, "x"), (X_SERVICE_METHOD, "M")],
            X_SERIALIZE_TYPE,
        ),
        (vec![(X_SERIALIZE_TYPE, "1")], X_SERVICE_METHOD),
        (
            vec![
                (X_SERIALIZE_TYPE, "1"),
                (X_SERVICE_METHOD, "M"),
                (X_MESSAGE_ID, "-1"),
            ],
            X_MESSAGE_ID,
        ),
        (
            vec![
                (X_SERIALIZE_TYPE, "1"),
                (X_SERVICE_METHOD, "M"),
                (X_COMPRESS_TYPE, "2"),
            ],
            X_COMPRESS_TYPE,
        ),
        (
            vec![
                (X_SERIALIZE_TYPE, "1"),
                (X_SERVICE_METHOD, "M"),
                (X_META, "a=%g0"),
            ],
            X_META,
        ),
    ];
    for (pairs, which) in cases {
        let e = invoke_request(&headers(&pairs), "/S", Bytes::new()).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains(which), "{which}: {}", e.message);
    }
    let e = invoke_request(
        &headers(&[(X_SERIALIZE_TYPE, "1"), (X_SERVICE_METHOD, "M")]),
        "/",
        Bytes::new(),
    )
    .unwrap_err();
    assert!(e.message.contains(X_SERVICE_PATH));
}

#[test]
fn responses_carry_gos_headers() {
    let req = headers(&[(X_MESSAGE_ID, "7"), (X_SERIALIZE_TYPE, "1")]);
    let mut header = Header::new();
    header.set_message_type(MessageType::Response);
    let mut metadata = Metadata::new();
    metadata.insert("b", "2 3");
    metadata.insert("a", "1");
    let res = invoke_response(
        &req,
        Some(("Arith", "Mul")),
        InvokeOutcome::Reply {
            header,
            metadata,
            payload: Bytes::from_static(b"{}"),
        },
    );
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers();
    assert_eq!(h[X_MESSAGE_ID], "7");
    assert_eq!(h[X_VERSION], "");
    assert_eq!(h[X_META], "a=1&b=2+3");
    assert_eq!(h[X_SERVICE_PATH], "Arith");
    assert!(h.get(X_COMPRESS_TYPE).is_none());

    let mut header = Header::new();
    header.set_status(MessageStatusType::Error);
    let mut metadata = Metadata::new();
    metadata.insert(keys::SERVICE_ERROR, "boom");
    let res = invoke_response(
        &req,
        Some(("Arith", "Mul")),
        InvokeOutcome::Reply {
            header,
            metadata,
            payload: Bytes::new(),
        },
    );
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(res.headers()[X_MESSAGE_STATUS_TYPE], "Error");
    assert_eq!(res.headers()[X_ERROR_MESSAGE], "boom");
    assert!(res.headers().get(X_META).is_none());
}

#[test]
fn content_type_as_go_detects_it() {
    assert_eq!(detect_content_type(b""), None);
    assert_eq!(
        detect_content_type(br#"{"C":200}"#),
        Some("text/plain; charset=utf-8")
    );
    // msgpack {"C":56}: no byte Go calls binary.
    assert_eq!(
        detect_content_type(b"\x81\xa1C8"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(
        detect_content_type(b"\x08\x01\x10"),
        Some("application/octet-stream")
    );
}
