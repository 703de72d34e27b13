//! Loading keys in every PEM form users have (made by the openssl CLI), refusing the rest,
//! and generating key files with safe permissions.

// Helpers outside #[test] functions unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use dual_auth_core::{KeyError, SigningAlgorithm, SigningKey, VerifyingKey, generate_key_pair};
use secrecy::ExposeSecret;

fn fixture(name: &str) -> PathBuf {
    dual_auth_test_support::key_fixture(name)
}

fn sign_and_check(private: &str, public: &str, expected: SigningAlgorithm) {
    let key = SigningKey::from_pem_file(fixture(private)).unwrap();
    assert_eq!(key.algorithm(), expected, "{private}");
    let token = key.sign_jwt(&serde_json::json!({"x": 1})).unwrap();
    let public_key = VerifyingKey::from_pem_file(fixture(public)).unwrap();
    assert_eq!(public_key.algorithm(), expected, "{public}");
    // The key's own exported public half is the openssl-made one.
    assert_eq!(VerifyingKey::from_pem(key.public_key_pem()).unwrap().algorithm(), expected);
    assert_eq!(key.public_key_pem(), std::fs::read_to_string(fixture(public)).unwrap(), "{private}: SPKI export matches openssl's");
    assert_eq!(token.split('.').count(), 3);
}

#[test]
fn every_supported_pem_form_loads_with_the_algorithm_its_kind_implies() {
    sign_and_check("rsa2048-pkcs8.pem", "rsa2048-spki.pub.pem", SigningAlgorithm::Rs256);
    sign_and_check("rsa2048-pkcs1.pem", "rsa2048-spki.pub.pem", SigningAlgorithm::Rs256);
    sign_and_check("ec-p256-sec1.pem", "ec-p256.pub.pem", SigningAlgorithm::Es256);
    sign_and_check("ec-p256-pkcs8.pem", "ec-p256.pub.pem", SigningAlgorithm::Es256);
    sign_and_check("ed25519-pkcs8.pem", "ed25519.pub.pem", SigningAlgorithm::EdDsa);
    let pkcs1_public = VerifyingKey::from_pem_file(fixture("rsa2048-pkcs1.pub.pem")).unwrap();
    assert_eq!(pkcs1_public.algorithm(), SigningAlgorithm::Rs256);
}

#[test]
fn rsa_keys_can_be_pinned_to_pss_but_not_to_another_kind() {
    let key = SigningKey::from_pem_file_with_algorithm(fixture("rsa2048-pkcs8.pem"), SigningAlgorithm::Ps256).unwrap();
    assert_eq!(key.algorithm(), SigningAlgorithm::Ps256);
    let err = SigningKey::from_pem_file_with_algorithm(fixture("rsa2048-pkcs8.pem"), SigningAlgorithm::Es256).unwrap_err();
    assert!(matches!(err, KeyError::AlgorithmMismatch { key_type: "RSA", .. }), "{err}");
    let pem = std::fs::read(fixture("ed25519.pub.pem")).unwrap();
    assert!(matches!(VerifyingKey::from_pem_with_algorithm(pem, SigningAlgorithm::Rs256), Err(KeyError::AlgorithmMismatch { .. })));
}

#[test]
fn unsupported_keys_are_refused_with_a_reason() {
    let reason = |r: Result<SigningKey, KeyError>| match r {
        Err(KeyError::InvalidKey { reason }) => reason,
        other => panic!("expected InvalidKey, got {other:?}"),
    };
    assert!(reason(SigningKey::from_pem_file(fixture("rsa1024.pem"))).contains("2048"));
    assert!(reason(SigningKey::from_pem_file(fixture("ec-p384-sec1.pem"))).contains("P-256"));
    assert!(reason(SigningKey::from_pem_file(fixture("rsa2048-encrypted.pem"))).contains("encrypted"));
    assert!(reason(SigningKey::from_pem_file(fixture("rsa2048-spki.pub.pem"))).contains("public key"));
    assert!(reason(SigningKey::from_pem(b"not a key")).contains("BEGIN"));
    assert!(reason(SigningKey::from_pem(b"-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n")).contains("base64"));
    let public_reason = |r: Result<VerifyingKey, KeyError>| match r {
        Err(KeyError::InvalidKey { reason }) => reason,
        other => panic!("expected InvalidKey, got {other:?}"),
    };
    assert!(public_reason(VerifyingKey::from_pem_file(fixture("rsa2048-pkcs8.pem"))).contains("private key"));
    assert!(public_reason(VerifyingKey::from_pem_file(fixture("ec-p384.pub.pem"))).contains("P-256"));
    assert!(public_reason(VerifyingKey::from_pem_file(fixture("rsa1024.pub.pem"))).contains("2048"));
    let err = SigningKey::from_pem_file(fixture("no-such-file.pem")).unwrap_err();
    assert!(matches!(&err, KeyError::Io { path, .. } if path.ends_with("no-such-file.pem")), "{err}");
}

#[test]
fn debug_never_shows_key_material() {
    let key = SigningKey::from_pem_file(fixture("rsa2048-pkcs8.pem")).unwrap().with_key_id("k1");
    let debug = format!("{key:?}");
    assert_eq!(debug, "SigningKey { algorithm: Rs256, key_id: Some(\"k1\"), .. }");
    let pair = generate_key_pair(SigningAlgorithm::EdDsa, 0).unwrap();
    assert!(!format!("{pair:?}").contains("PRIVATE"));
}

#[test]
fn generated_pairs_load_back_for_every_algorithm_family() {
    for (alg, bits) in [(SigningAlgorithm::Rs256, 2048), (SigningAlgorithm::Es256, 0), (SigningAlgorithm::EdDsa, 0)] {
        let pair = generate_key_pair(alg, bits).unwrap();
        let key = SigningKey::from_pem(pair.private_key_pem.expose_secret()).unwrap();
        assert_eq!(key.algorithm(), alg);
        assert!(pair.private_key_pem.expose_secret().starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");
        assert!(pair.public_key_pem.starts_with("-----BEGIN PUBLIC KEY-----"), "SPKI");
        assert_eq!(VerifyingKey::from_pem(&pair.public_key_pem).unwrap().algorithm(), alg);
    }
    assert!(matches!(generate_key_pair(SigningAlgorithm::Rs256, 1024), Err(KeyError::InvalidKey { .. })));
    assert!(matches!(generate_key_pair(SigningAlgorithm::Rs256, 2050), Err(KeyError::InvalidKey { .. })));
}

#[cfg(unix)]
#[test]
fn key_files_are_written_private_and_never_overwritten() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let pair = generate_key_pair(SigningAlgorithm::Es256, 0).unwrap();
    let (private, public) = pair.write_to_dir(&dir.path().join("keys")).unwrap();
    assert_eq!(std::fs::metadata(&private).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&public).unwrap().permissions().mode() & 0o777 & !0o022, 0o644 & !0o022);
    assert_eq!(private.file_name().unwrap(), "app-private-key.pem");
    assert_eq!(public.file_name().unwrap(), "app-public-key.pem");
    let err = pair.write_to_dir(&dir.path().join("keys")).unwrap_err();
    assert!(matches!(err, KeyError::AlreadyExists { .. }), "{err}");
    SigningKey::from_pem_file(&private).unwrap();
}

#[test]
fn algorithm_names_parse() {
    assert_eq!("eddsa".parse::<SigningAlgorithm>().unwrap(), SigningAlgorithm::EdDsa);
    assert_eq!("RS256".parse::<SigningAlgorithm>().unwrap(), SigningAlgorithm::Rs256);
    assert!(matches!("HS256".parse::<SigningAlgorithm>(), Err(KeyError::UnsupportedAlgorithm { .. })));
}

#[test]
fn jwk_thumbprint_matches_rfc_7638_example() {
    // RFC 7638 §3.1.
    let jwk = serde_json::json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    let required: serde_json::Map<String, serde_json::Value> =
        ["e", "kty", "n"].iter().map(|k| ((*k).to_owned(), jwk[*k].clone())).collect();
    assert_eq!(dual_auth_core::jwk_thumbprint(&required), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

#[test]
fn public_jwks_carry_the_key_members_and_private_key_jwt_gets_a_thumbprint_kid() {
    let rsa = SigningKey::from_pem_file(fixture("rsa2048-pkcs8.pem")).unwrap();
    let jwk = rsa.public_jwk();
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["e"], "AQAB");
    assert_eq!(jwk["alg"], "RS256");
    assert!(jwk.get("d").is_none(), "no private member");
    let ec = SigningKey::from_pem_file(fixture("ec-p256-pkcs8.pem")).unwrap();
    assert_eq!((ec.public_jwk()["kty"].as_str(), ec.public_jwk()["crv"].as_str()), (Some("EC"), Some("P-256")));
    let ed = SigningKey::from_pem_file(fixture("ed25519-pkcs8.pem")).unwrap();
    assert_eq!((ed.public_jwk()["kty"].as_str(), ed.public_jwk()["crv"].as_str()), (Some("OKP"), Some("Ed25519")));

    let thumbprint = rsa.jwk_thumbprint();
    assert_eq!(thumbprint.len(), 43);
    match dual_auth_core::ClientAuthentication::private_key_jwt(rsa) {
        dual_auth_core::ClientAuthentication::PrivateKeyJwt(key) => {
            assert_eq!(key.key_id(), Some(thumbprint.as_str()))
        }
        other => panic!("{other:?}"),
    }
    let named = SigningKey::from_pem_file(fixture("rsa2048-pkcs8.pem")).unwrap().with_key_id("mine");
    match dual_auth_core::ClientAuthentication::private_key_jwt(named) {
        dual_auth_core::ClientAuthentication::PrivateKeyJwt(key) => {
            assert_eq!(key.key_id(), Some("mine"))
        }
        other => panic!("{other:?}"),
    }
}

fn invalid_reason<T: std::fmt::Debug>(result: Result<T, KeyError>) -> String {
    match result {
        Err(KeyError::InvalidKey { reason }) => reason,
        other => panic!("expected InvalidKey, got {other:?}"),
    }
}

/// A real 2048-bit modulus with the given exponent, or the modulus shifted right by `shift`.
fn rsa_public(e: u32, shift: i32) -> (Vec<u8>, serde_json::Map<String, serde_json::Value>) {
    use base64::Engine;
    let real = openssl::rsa::Rsa::generate(2048).unwrap();
    let mut n = openssl::bn::BigNum::new().unwrap();
    n.rshift(real.n(), shift).unwrap();
    let b64 = |b: &openssl::bn::BigNumRef| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b.to_vec());
    let e = openssl::bn::BigNum::from_u32(e).unwrap();
    let jwk = serde_json::json!({"kty": "RSA", "n": b64(&n), "e": b64(&e)});
    let key = openssl::rsa::Rsa::from_public_components(n, e).unwrap();
    (key.public_key_to_pem().unwrap(), jwk.as_object().unwrap().clone())
}

#[test]
fn weak_rsa_keys_are_refused_from_pem_and_jwk() {
    for (e, shift, expected) in [
        (1, 0, "e = 1 is weak"),
        (3, 0, "e = 3 is weak"),
        (65_538, 0, "e = 65538 is weak"),
        (65_537, 7, "the RSA modulus has 2041 bits: at least 2048 are needed"),
    ] {
        let (pem, jwk) = rsa_public(e, shift);
        assert!(invalid_reason(VerifyingKey::from_pem(&pem)).contains(expected), "PEM e={e}");
        assert!(invalid_reason(VerifyingKey::from_jwk(&jwk)).contains(expected), "JWK e={e}");
        let pkcs1 = openssl::rsa::Rsa::public_key_from_pem(&pem).unwrap().public_key_to_pem_pkcs1().unwrap();
        assert!(invalid_reason(VerifyingKey::from_pem(&pkcs1)).contains(expected), "PKCS#1 e={e}");
    }
    // A private key with e = 3 is refused too.
    let e3 = openssl::rsa::Rsa::generate_with_e(2048, &openssl::bn::BigNum::from_u32(3).unwrap()).unwrap();
    let pem = openssl::pkey::PKey::from_rsa(e3).unwrap().private_key_to_pem_pkcs8().unwrap();
    assert!(invalid_reason(SigningKey::from_pem(&pem)).contains("e = 3 is weak"));
    // The usual exponent and size load.
    let (pem, jwk) = rsa_public(65_537, 0);
    assert!(VerifyingKey::from_pem(&pem).is_ok() && VerifyingKey::from_jwk(&jwk).is_ok());
}

#[test]
fn small_order_ed25519_keys_are_refused_from_pem_and_jwk() {
    use base64::Engine;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut order_two = [0xff; 32];
    order_two[0] = 0xec;
    order_two[31] = 0x7f;
    let mut zero_with_sign = [0u8; 32];
    zero_with_sign[31] = 0x80;
    // A point of order 8, with either sign of x.
    let order_eight: [u8; 32] = [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
        0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
    ];
    let mut order_eight_negated = order_eight;
    order_eight_negated[31] |= 0x80;
    for point in [identity, order_two, zero_with_sign, [0u8; 32], order_eight, order_eight_negated] {
        let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(point);
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x});
        assert!(invalid_reason(VerifyingKey::from_jwk(jwk.as_object().unwrap())).contains("small-order point"), "{point:02x?}");
        // SPKI: the Ed25519 algorithm identifier, then the 32-byte point.
        let mut der = vec![0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        der.extend_from_slice(&point);
        let pem =
            format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", base64::engine::general_purpose::STANDARD.encode(&der));
        assert!(invalid_reason(VerifyingKey::from_pem(pem)).contains("small-order point"), "{point:02x?}");
    }
    assert!(VerifyingKey::from_pem_file(fixture("ed25519.pub.pem")).is_ok());
}
