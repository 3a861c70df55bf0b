//! KMS_PROVIDER kmip: endpoint, timeouts, and the TLS material in the token Secret.

use super::Context;
use super::tls::{self, Source};
use crate::config::{DEFAULT_KMIP_TIMEOUT, Provider, parse_kmip_endpoint};
use crate::field;
use crate::names;
use crate::verdict::Verdict;

const P: Provider = Provider::Kmip;

pub(super) fn validate(ctx: &Context<'_>, out: &mut Verdict) {
    let kms = &ctx.cluster.kms;
    if let Some(endpoint) =
        ctx.require(out, P, "KMIP_ENDPOINT", "set it to the KMIP server's host:port, e.g. kmip.example.com:5696")
    {
        let path = field::detail("KMIP_ENDPOINT");
        match parse_kmip_endpoint(endpoint) {
            Err(why) => out.deny(path, format!("KMIP_ENDPOINT {} {why}.", field::shown(endpoint))),
            Ok(e) if e.port.is_none() => out.deny(path, format!("KMIP_ENDPOINT {} has no port and Rook adds none, so the OSDs fail to dial; append :5696 (the KMIP port).", field::shown(endpoint))),
            Ok(_) => {}
        }
    }
    for key in ["READ_TIMEOUT", "WRITE_TIMEOUT"] {
        let Some(v) = kms.param(key) else { continue };
        match v.parse::<u8>() {
            Ok(0) => out.warn(field::detail(key), format!("{key} 0 means no deadline: a KMIP server that stops answering hangs OSD start-up; use a few seconds.")),
            Ok(_) => {}
            Err(_) => out.deny(field::detail(key), format!("{key} {} must be a whole number of seconds from 0 to 255 (Rook silently ignores or wraps other values); e.g. \"10\".", field::shown(v))),
        }
    }
    let write = kms.param("WRITE_TIMEOUT").unwrap_or(DEFAULT_KMIP_TIMEOUT);
    if write.parse::<u8>().is_ok()
        && let Some(read) = kms.param("READ_TIMEOUT").filter(|r| *r != write && r.parse::<u8>().is_ok())
    {
        out.warn(field::detail("READ_TIMEOUT"), format!("READ_TIMEOUT {read} has no effect: Rook applies WRITE_TIMEOUT ({write}) as the read deadline; set both to the same value."));
    }
    if let Some(name) = kms.param("TLS_SERVER_NAME").filter(|n| !names::is_server_name(n)) {
        out.deny(
            field::detail("TLS_SERVER_NAME"),
            format!(
                "TLS_SERVER_NAME {} is not a DNS name or IP address; set the name in the KMIP server's certificate.",
                field::shown(name)
            ),
        );
    }
    let Some(secret) = ctx.token_secret(
        out,
        P,
        &["CA_CERT", "CLIENT_CERT", "CLIENT_KEY"],
        "the PEM CA_CERT, CLIENT_CERT and CLIENT_KEY",
    ) else {
        return;
    };
    let name = kms.token_secret().unwrap_or_default();
    let src = |key| Source { field: field::TOKEN_SECRET_NAME, secret: name, key };
    if let Some(ca) = secret.non_empty("CA_CERT") {
        tls::check_ca(out, &src("CA_CERT"), ca, ctx.now);
    }
    if let (Some(cert), Some(key)) = (secret.non_empty("CLIENT_CERT"), secret.non_empty("CLIENT_KEY")) {
        tls::check_client(out, &src("CLIENT_CERT"), cert, &src("CLIENT_KEY"), key, ctx.now);
    }
}
