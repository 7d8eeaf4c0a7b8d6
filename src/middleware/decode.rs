//! `Content-Encoding` decoding with a cap on the decoded size.

use std::io::{self, Read};

/// Why a body could not be decoded. Never carries content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    /// A coding other than gzip, deflate, br, zstd and identity.
    UnknownEncoding,
    /// The bytes are not valid in the declared coding.
    Corrupt,
    /// The decoded body would exceed the cap (a "zip bomb" or just a large body).
    TooLarge,
}

impl DecodeError {
    pub(crate) fn kind(self) -> &'static str {
        match self {
            DecodeError::UnknownEncoding => "unknown-encoding",
            DecodeError::Corrupt => "corrupt-encoding",
            DecodeError::TooLarge => "decoded-too-large",
        }
    }
}

/// Decodes `body` according to a `Content-Encoding` header value (codings are listed in
/// the order they were applied, so they are undone last to first). Returns `None` when
/// the body is not encoded.
pub(crate) fn decode(
    encoding: &str,
    body: &[u8],
    cap: usize,
) -> Result<Option<Vec<u8>>, DecodeError> {
    let codings: Vec<String> = encoding
        .split(',')
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    if codings.is_empty() {
        return Ok(None);
    }
    let mut data = body.to_vec();
    for coding in codings.iter().rev() {
        data = decode_one(coding, &data, cap)?;
    }
    Ok(Some(data))
}

fn decode_one(coding: &str, data: &[u8], cap: usize) -> Result<Vec<u8>, DecodeError> {
    match coding {
        "gzip" | "x-gzip" => read_capped(flate2::read::MultiGzDecoder::new(data), cap),
        // RFC 9110 says "deflate" is the zlib format; some clients send raw DEFLATE.
        "deflate" => read_capped(flate2::read::ZlibDecoder::new(data), cap).or_else(|e| match e {
            DecodeError::Corrupt => read_capped(flate2::read::DeflateDecoder::new(data), cap),
            other => Err(other),
        }),
        "br" => read_capped(brotli_decompressor::Decompressor::new(data, 8192), cap),
        "zstd" => read_zstd(data, cap),
        _ => Err(DecodeError::UnknownEncoding),
    }
}

/// Decodes every frame of a zstd stream, skipping skippable frames, as RFC 8878 asks of
/// a decoder: the provider reads them all, so inspection must too. (`StreamingDecoder`
/// alone reads one frame, and stops at a skippable one.)
fn read_zstd(mut data: &[u8], cap: usize) -> Result<Vec<u8>, DecodeError> {
    use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
    let mut out = Vec::new();
    while !data.is_empty() {
        match ruzstd::decoding::StreamingDecoder::new(&mut data) {
            Ok(frame) => {
                let decoded = read_capped(frame, cap - out.len())?;
                out.extend_from_slice(&decoded);
            }
            Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                length,
                ..
            })) => {
                data = data.get(length as usize..).ok_or(DecodeError::Corrupt)?;
            }
            Err(_) => return Err(DecodeError::Corrupt),
        }
    }
    Ok(out)
}

/// Reads at most `cap` bytes; one byte more means the body is too large.
fn read_capped(reader: impl Read, cap: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let mut limited = reader.take(cap as u64 + 1);
    match limited.read_to_end(&mut out) {
        Ok(_) if out.len() > cap => Err(DecodeError::TooLarge),
        Ok(_) => Ok(out),
        Err(e) if e.kind() == io::ErrorKind::OutOfMemory => Err(DecodeError::TooLarge),
        Err(_) => Err(DecodeError::Corrupt),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    // The same ten `{"prompt":"hello"}` records, compressed by Python's brotli and
    // zstandard packages (the crate ships decoders only).
    const BR: &str = "1bb300f8c56d6c7dcfecfda06128d18b42c20801dcc1a3f62250490a0f";
    const ZSTD: &str = "28b52ffd20b4cd0000907b2270726f6d7074223a2268656c6c6f227d01003e45cd30";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn codings_and_caps() {
        let plain = b"{\"prompt\":\"hello\"}".repeat(10);
        assert_eq!(decode("identity", &plain, 1 << 20).unwrap(), None);
        assert_eq!(
            decode("gzip", &gzip(&plain), 1 << 20).unwrap().unwrap(),
            plain
        );
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&plain).unwrap();
        assert_eq!(
            decode("deflate", &z.finish().unwrap(), 1 << 20)
                .unwrap()
                .unwrap(),
            plain
        );
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(&plain).unwrap();
        assert_eq!(
            decode("deflate", &d.finish().unwrap(), 1 << 20)
                .unwrap()
                .unwrap(),
            plain
        );
        // Applied gzip then gzip again: undone in reverse.
        assert_eq!(
            decode("gzip, gzip", &gzip(&gzip(&plain)), 1 << 20)
                .unwrap()
                .unwrap(),
            plain
        );
        assert_eq!(
            decode("compress", &plain, 1 << 20),
            Err(DecodeError::UnknownEncoding)
        );
        assert_eq!(
            decode("gzip", b"not gzip", 1 << 20),
            Err(DecodeError::Corrupt)
        );
        let bomb = gzip(&vec![b'a'; 1 << 20]);
        assert_eq!(decode("gzip", &bomb, 1000), Err(DecodeError::TooLarge));
        assert_eq!(decode("br", &hex(BR), 1 << 20).unwrap().unwrap(), plain);
        assert_eq!(decode("zstd", &hex(ZSTD), 1 << 20).unwrap().unwrap(), plain);
        // Regression: only the first frame was decoded, and a skippable frame was refused.
        let skippable = [&[0x50, 0x2A, 0x4D, 0x18, 3, 0, 0, 0][..], b"abc"].concat();
        let frames = [skippable.as_slice(), &hex(ZSTD), &skippable, &hex(ZSTD)].concat();
        let both = decode("zstd", &frames, 1 << 20).unwrap().unwrap();
        assert_eq!(both, [plain.as_slice(), &plain].concat());
        assert_eq!(
            decode("zstd", &frames, plain.len() + 10),
            Err(DecodeError::TooLarge)
        );
        let cut = &frames[..frames.len() - 3];
        assert_eq!(decode("zstd", cut, 1 << 20), Err(DecodeError::Corrupt));
        let short_skip = &skippable[..10];
        assert_eq!(
            decode("zstd", short_skip, 1 << 20),
            Err(DecodeError::Corrupt)
        );
        assert_eq!(
            decode("br", b"\xff\xff\xff", 1 << 20),
            Err(DecodeError::Corrupt)
        );
        assert_eq!(decode("zstd", b"nope", 1 << 20), Err(DecodeError::Corrupt));
    }
}
