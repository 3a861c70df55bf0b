//! KMIP request and response messages as Rook sends and reads them: protocol 1.4 in every header,
//! one batch item per message.

use super::ttlv::{Item, Value, tag};

/// The protocol version Rook hard-codes (`kms/kmip.go`).
pub const ROOK_PROTOCOL: (i32, i32) = (1, 4);

/// KMIP operations we send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Register = 0x03,
    Get = 0x0A,
    Destroy = 0x14,
    Query = 0x18,
    DiscoverVersions = 0x1E,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Operation::Register => "Register",
            Operation::Get => "Get",
            Operation::Destroy => "Destroy",
            Operation::Query => "Query",
            Operation::DiscoverVersions => "DiscoverVersions",
        }
    }
}

fn version(tag_: u32, (major, minor): (i32, i32)) -> Item {
    Item::structure(
        tag_,
        vec![
            Item::new(tag::PROTOCOL_VERSION_MAJOR, Value::Integer(major)),
            Item::new(tag::PROTOCOL_VERSION_MINOR, Value::Integer(minor)),
        ],
    )
}

/// A request message with a 1.4 header and one batch item.
pub fn request(operation: Operation, batch_id: Option<&[u8]>, payload: Vec<Item>) -> Item {
    let mut batch = vec![Item::new(tag::OPERATION, Value::Enumeration(operation as u32))];
    if let Some(id) = batch_id {
        batch.push(Item::new(tag::UNIQUE_BATCH_ITEM_ID, Value::ByteString(id.to_vec())));
    }
    batch.push(Item::structure(tag::REQUEST_PAYLOAD, payload));
    Item::structure(
        tag::REQUEST_MESSAGE,
        vec![
            Item::structure(
                tag::REQUEST_HEADER,
                vec![version(tag::PROTOCOL_VERSION, ROOK_PROTOCOL), Item::new(tag::BATCH_COUNT, Value::Integer(1))],
            ),
            Item::structure(tag::BATCH_ITEM, batch),
        ],
    )
}

/// Rook's handshake: DiscoverVersions asking for exactly 1.4.
pub fn discover_versions(batch_id: Option<&[u8]>) -> Item {
    request(Operation::DiscoverVersions, batch_id, vec![version(tag::PROTOCOL_VERSION, ROOK_PROTOCOL)])
}

/// KMIP Result Reason names, for messages.
pub fn reason_name(code: u32) -> &'static str {
    match code {
        0x01 => "Item Not Found",
        0x02 => "Response Too Large",
        0x03 => "Authentication Not Successful",
        0x04 => "Invalid Message",
        0x05 => "Operation Not Supported",
        0x06 => "Missing Data",
        0x07 => "Invalid Field",
        0x08 => "Feature Not Supported",
        0x0A => "Cryptographic Failure",
        0x0B => "Illegal Operation",
        0x0C => "Permission Denied",
        0x0D => "Object Archived",
        0x10 => "Key Format Type Not Supported",
        0x13 => "Key Value Not Present",
        0x17 => "Not Extractable",
        0x18 => "Object Already Exists",
        0x100 => "General Failure",
        _ => "unknown reason",
    }
}

/// What went wrong with a response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the answer is not a KMIP response message")]
    NotAResponse,
    #[error("the response holds {0} batch items, expected 1")]
    BatchCount(usize),
    #[error("the response is for another operation")]
    WrongOperation,
    #[error("the response carries another batch item id")]
    WrongBatchId,
    #[error("the server answered {operation} with {reason}{}", message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Failed { operation: &'static str, reason: String, message: Option<String> },
}

/// The payload of a successful single-item response, checked the way Rook checks it.
pub fn response_payload(message: &Item, operation: Operation, batch_id: Option<&[u8]>) -> Result<Item, ResponseError> {
    if message.tag != tag::RESPONSE_MESSAGE || message.child(tag::RESPONSE_HEADER).is_none() {
        return Err(ResponseError::NotAResponse);
    }
    let items: Vec<&Item> = message.all(tag::BATCH_ITEM).collect();
    let [item] = items.as_slice() else {
        return Err(ResponseError::BatchCount(items.len()));
    };
    if let Some(op) = item.child(tag::OPERATION).and_then(Item::as_enum)
        && op != operation as u32
    {
        return Err(ResponseError::WrongOperation);
    }
    if let Some(id) = batch_id
        && item.child(tag::UNIQUE_BATCH_ITEM_ID).and_then(Item::as_bytes) != Some(id)
    {
        return Err(ResponseError::WrongBatchId);
    }
    let status = item.child(tag::RESULT_STATUS).and_then(Item::as_enum);
    if status != Some(0) {
        let reason = item.child(tag::RESULT_REASON).and_then(Item::as_enum);
        let message = item
            .child(tag::RESULT_MESSAGE)
            .and_then(Item::as_text)
            .map(|m| crate::field::shown(m).trim_matches('"').to_string());
        return Err(ResponseError::Failed {
            operation: operation.name(),
            reason: match (status, reason) {
                (None, _) => "no result status".to_string(),
                (_, Some(r)) => format!("{} ({r:#x})", reason_name(r)),
                (Some(s), None) => format!("result status {s}"),
            },
            message,
        });
    }
    Ok(item.child(tag::RESPONSE_PAYLOAD).cloned().unwrap_or_else(|| Item::structure(tag::RESPONSE_PAYLOAD, vec![])))
}

/// The protocol versions listed in a DiscoverVersions response payload.
pub fn versions(payload: &Item) -> Vec<(i32, i32)> {
    payload
        .all(tag::PROTOCOL_VERSION)
        .filter_map(|v| {
            Some((v.child(tag::PROTOCOL_VERSION_MAJOR)?.as_i32()?, v.child(tag::PROTOCOL_VERSION_MINOR)?.as_i32()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::ttlv::decode_hex as hex;
    use super::*;

    // Byte examples from the reference (kms-protocols.md §3.2).
    const TC_16_1: &str = "42007801000000604200770100000038420069010000002042006A0200000004000000010000000042006B0200000004000000010000000042000D0200000004000000010000000042000F010000001842005C05000000040000001E000000004200790100000000";
    const ROOK_DISCOVER: &str = "42007801000000884200770100000038420069010000002042006A0200000004000000010000000042006B0200000004000000040000000042000D0200000004000000010000000042000F010000004042005C05000000040000001E000000004200790100000028420069010000002042006A0200000004000000010000000042006B02000000040000000400000000";
    const QUERY: &str = "42007801000000804200770100000038420069010000002042006A0200000004000000010000000042006B0200000004000000040000000042000D0200000004000000010000000042000F010000003842005C0500000004000000180000000042007901000000204200740500000004000000010000000042007405000000040000000300000000";

    #[test]
    fn rook_discover_versions_is_byte_exact() {
        assert_eq!(discover_versions(None).encode(), hex(ROOK_DISCOVER));
    }

    #[test]
    fn query_request_is_byte_exact() {
        let payload = [1u32, 3].map(|f| Item::new(tag::QUERY_FUNCTION, Value::Enumeration(f))).to_vec();
        assert_eq!(request(Operation::Query, None, payload).encode(), hex(QUERY));
    }

    #[test]
    fn kmip_1_1_test_case_decodes() {
        let message = Item::decode(&hex(TC_16_1)).unwrap();
        let header = message.child(tag::REQUEST_HEADER).unwrap();
        assert_eq!(versions(header), vec![(1, 1)]);
        let batch = message.child(tag::BATCH_ITEM).unwrap();
        assert_eq!(batch.child(tag::OPERATION).unwrap().as_enum(), Some(0x1E));
        assert_eq!(Item::decode(&hex(TC_16_1)).unwrap().encode(), hex(TC_16_1));
    }

    fn response(op: u32, id: Option<&[u8]>, status: u32, extra: Vec<Item>) -> Item {
        let mut batch = vec![Item::new(tag::OPERATION, Value::Enumeration(op))];
        if let Some(id) = id {
            batch.push(Item::new(tag::UNIQUE_BATCH_ITEM_ID, Value::ByteString(id.to_vec())));
        }
        batch.push(Item::new(tag::RESULT_STATUS, Value::Enumeration(status)));
        batch.extend(extra);
        Item::structure(
            tag::RESPONSE_MESSAGE,
            vec![
                Item::structure(
                    tag::RESPONSE_HEADER,
                    vec![
                        version(tag::PROTOCOL_VERSION, (1, 4)),
                        Item::new(tag::TIME_STAMP, Value::DateTime(0)),
                        Item::new(tag::BATCH_COUNT, Value::Integer(1)),
                    ],
                ),
                Item::structure(tag::BATCH_ITEM, batch),
            ],
        )
    }

    #[test]
    fn responses_are_checked_like_rook() {
        let ok = response(
            0x1E,
            Some(b"id"),
            0,
            vec![Item::structure(
                tag::RESPONSE_PAYLOAD,
                vec![version(tag::PROTOCOL_VERSION, (1, 4)), version(tag::PROTOCOL_VERSION, (1, 2))],
            )],
        );
        let payload = response_payload(&ok, Operation::DiscoverVersions, Some(b"id")).unwrap();
        assert_eq!(versions(&payload), vec![(1, 4), (1, 2)]);
        assert_eq!(response_payload(&ok, Operation::Get, Some(b"id")), Err(ResponseError::WrongOperation));
        assert_eq!(
            response_payload(&ok, Operation::DiscoverVersions, Some(b"other")),
            Err(ResponseError::WrongBatchId)
        );
        let failed = response(
            0x1E,
            None,
            1,
            vec![
                Item::new(tag::RESULT_REASON, Value::Enumeration(0x0C)),
                Item::new(tag::RESULT_MESSAGE, Value::TextString("nope".into())),
            ],
        );
        let err = response_payload(&failed, Operation::DiscoverVersions, None).unwrap_err();
        assert_eq!(err.to_string(), "the server answered DiscoverVersions with Permission Denied (0xc): nope");
        assert_eq!(
            response_payload(&discover_versions(None), Operation::DiscoverVersions, None),
            Err(ResponseError::NotAResponse)
        );
    }
}
