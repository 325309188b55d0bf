//! Finding PEM blocks in text that may hold several (`openssl ecparam -genkey` writes an
//! `EC PARAMETERS` block before the key; certificate files may carry a chain).

/// One `-----BEGIN label----- ... -----END label-----` block.
pub(super) struct Block<'a> {
    /// The label, e.g. `PRIVATE KEY`.
    pub label: &'a str,
    /// The whole block including its BEGIN and END lines (to the end of the text when the END
    /// line is missing, so that decoding reports the damage).
    pub text: &'a str,
}

/// The PEM blocks of `text`, in order.
pub(super) fn blocks(text: &str) -> Vec<Block<'_>> {
    const BEGIN: &str = "-----BEGIN ";
    const DASHES: &str = "-----";
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let after_begin = &rest[start + BEGIN.len()..];
        let Some(label_len) = after_begin.find(DASHES) else {
            break;
        };
        let label = &after_begin[..label_len];
        if label.contains('\n') {
            rest = after_begin;
            continue;
        }
        let end_marker = format!("-----END {label}-----");
        let block = &rest[start..];
        let block_len = block
            .find(&end_marker)
            .map_or(block.len(), |end| end + end_marker.len());
        found.push(Block {
            label,
            text: &block[..block_len],
        });
        rest = &block[block_len..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_block_and_its_label() {
        let text =
            "junk\n-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n\
                    -----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        let found = blocks(text);
        let labels: Vec<&str> = found.iter().map(|b| b.label).collect();
        assert_eq!(labels, ["EC PARAMETERS", "EC PRIVATE KEY"]);
        assert!(found[1].text.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        assert!(found[1].text.ends_with("-----END EC PRIVATE KEY-----"));
    }

    #[test]
    fn no_blocks_in_plain_text() {
        assert!(blocks("not a key at all").is_empty());
        assert!(blocks("-----BEGIN \nno label").is_empty());
    }
}
