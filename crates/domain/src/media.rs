//! Image media types the system accepts, recognised by their content rather than their name.
//!
//! Cohere's vision models take PNG, JPEG, WEBP and non-animated GIF images; [`sniff`] checks an
//! upload before it is stored, so a bad file is refused at once instead of failing every stage
//! that later sends it to Cohere.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Largest image accepted, in bytes (20 MiB).
pub const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;

/// A supported image format; serialized as its MIME type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum MediaType {
    /// `image/png`
    #[serde(rename = "image/png")]
    Png,
    /// `image/jpeg`
    #[serde(rename = "image/jpeg")]
    Jpeg,
    /// `image/webp`
    #[serde(rename = "image/webp")]
    Webp,
    /// `image/gif` (single frame only)
    #[serde(rename = "image/gif")]
    Gif,
}

impl MediaType {
    /// Every supported type.
    pub const ALL: &'static [MediaType] = &[Self::Png, Self::Jpeg, Self::Webp, Self::Gif];

    /// The MIME type, e.g. `"image/png"`; use it for `Content-Type` and `data:` URLs.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
            Self::Gif => "image/gif",
        }
    }

    /// The usual file extension, without the dot (`"jpg"` for JPEG).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
            Self::Gif => "gif",
        }
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.mime())
    }
}

impl FromStr for MediaType {
    type Err = MediaError;

    /// Parses a MIME type as sent in a `Content-Type` header: case-insensitive, parameters
    /// (`; charset=…`) ignored, and the common misspelling `image/jpg` accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let essence = s.split(';').next().unwrap_or(s).trim().to_ascii_lowercase();
        match essence.as_str() {
            "image/png" => Ok(Self::Png),
            "image/jpeg" | "image/jpg" => Ok(Self::Jpeg),
            "image/webp" => Ok(Self::Webp),
            "image/gif" => Ok(Self::Gif),
            _ => Err(MediaError::UnsupportedMediaType(s.to_owned())),
        }
    }
}

/// Why a file is not an acceptable image; messages are meant for the uploader.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// Zero bytes.
    #[error("file is empty")]
    Empty,
    /// Over [`MAX_IMAGE_BYTES`].
    #[error("file is too large: {size} bytes, the limit is {max} bytes")]
    TooLarge {
        /// The file's size in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The content is none of the supported formats.
    #[error("file is not a PNG, JPEG, WEBP or GIF image")]
    Unsupported,
    /// A declared media type that is not supported.
    #[error(
        "media type \"{0}\" is not supported; use image/png, image/jpeg, image/webp or image/gif"
    )]
    UnsupportedMediaType(String),
    /// A GIF with more than one frame.
    #[error("animated GIFs are not supported; upload a single-frame image")]
    AnimatedGif,
    /// The file starts like a supported image but its structure is broken or cut short.
    #[error("image is corrupt or truncated: {0}")]
    Corrupt(&'static str),
}

/// Recognises an image by its first bytes (and, for GIF, its block structure).
///
/// Rejects empty and oversized input and animated GIFs. Only GIFs are checked beyond their
/// signature: they are the one format whose animation Cohere cannot take.
pub fn sniff(bytes: &[u8]) -> Result<MediaType, MediaError> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.is_empty() {
        return Err(MediaError::Empty);
    }
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(MediaError::TooLarge {
            size: bytes.len(),
            max: MAX_IMAGE_BYTES,
        });
    }
    if bytes.starts_with(PNG) {
        Ok(MediaType::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Ok(MediaType::Jpeg)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Ok(MediaType::Webp)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        match gif_frames(bytes)? {
            1 => Ok(MediaType::Gif),
            _ => Err(MediaError::AnimatedGif),
        }
    } else {
        Err(MediaError::Unsupported)
    }
}

/// Walks a GIF's blocks and counts its images, stopping early at the second one.
fn gif_frames(bytes: &[u8]) -> Result<usize, MediaError> {
    let mut r = Reader { bytes, pos: 0 };
    r.take(6)?; // signature and version
    let screen = r.take(7)?; // logical screen descriptor
    r.skip_color_table(screen[4])?;
    let mut frames = 0;
    loop {
        match r.byte()? {
            // Extension: label, then data sub-blocks.
            0x21 => {
                r.byte()?;
                r.skip_sub_blocks()?;
            }
            // Image descriptor: position and size, flags, then LZW code size and data.
            0x2C => {
                frames += 1;
                if frames > 1 {
                    return Ok(frames);
                }
                let descriptor = r.take(9)?;
                r.skip_color_table(descriptor[8])?;
                r.byte()?;
                r.skip_sub_blocks()?;
            }
            0x3B if frames == 0 => return Err(MediaError::Corrupt("GIF contains no image")),
            0x3B => return Ok(frames),
            _ => return Err(MediaError::Corrupt("unknown GIF block")),
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MediaError> {
        let end = self.pos.saturating_add(n);
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(MediaError::Corrupt("GIF ends too early"))?;
        self.pos = end;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8, MediaError> {
        Ok(self.take(1)?[0])
    }

    /// Skips the color table announced by a packed-fields byte, if any.
    fn skip_color_table(&mut self, packed: u8) -> Result<(), MediaError> {
        if packed & 0x80 != 0 {
            self.take(3 << ((packed & 0x07) + 1))?;
        }
        Ok(())
    }

    /// Skips length-prefixed sub-blocks up to and including the zero-length terminator.
    fn skip_sub_blocks(&mut self) -> Result<(), MediaError> {
        loop {
            match self.byte()? {
                0 => return Ok(()),
                len => {
                    self.take(usize::from(len))?;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const PNG_HEADER: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    /// A 1x1 GIF with a global color table and `frames` images, each preceded by a
    /// graphic control extension (as animations have).
    fn gif(frames: usize) -> Vec<u8> {
        let mut b = b"GIF89a".to_vec();
        b.extend([1, 0, 1, 0, 0x80, 0, 0]); // 1x1, global color table of 2 colors
        b.extend([0, 0, 0, 0xFF, 0xFF, 0xFF]);
        if frames > 1 {
            b.extend([0x21, 0xFF, 11]); // application extension: loop forever
            b.extend(b"NETSCAPE2.0");
            b.extend([3, 1, 0, 0, 0]);
        }
        for _ in 0..frames {
            b.extend([0x21, 0xF9, 4, 0, 10, 0, 0, 0]); // graphic control: 0.1 s delay
            b.extend([0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]); // image descriptor, no local table
            b.extend([2, 2, 0x4C, 0x01, 0]); // LZW code size 2, one 2-byte sub-block
        }
        b.push(0x3B);
        b
    }

    #[test]
    fn png_jpeg_and_webp_are_recognised_by_their_signature() {
        assert_eq!(sniff(PNG_HEADER), Ok(MediaType::Png));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0"), Ok(MediaType::Jpeg));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Ok(MediaType::Webp));
    }

    #[test]
    fn a_single_frame_gif_is_accepted() {
        assert_eq!(sniff(&gif(1)), Ok(MediaType::Gif));
        let mut gif87 = gif(1);
        gif87[..6].copy_from_slice(b"GIF87a");
        assert_eq!(sniff(&gif87), Ok(MediaType::Gif));
    }

    #[test]
    fn a_gif_with_two_frames_is_rejected_as_animated() {
        assert_eq!(sniff(&gif(2)), Err(MediaError::AnimatedGif));
        assert_eq!(sniff(&gif(5)), Err(MediaError::AnimatedGif));
    }

    #[test]
    fn a_gif_with_local_color_tables_and_comments_is_walked_correctly() {
        let mut b = b"GIF89a".to_vec();
        b.extend([2, 0, 2, 0, 0x00, 0, 0]); // no global color table
        b.extend([0x21, 0xFE, 5]); // comment extension in two sub-blocks
        b.extend(b"hello");
        b.extend([2, 0x2C, 0x3B, 0]); // bytes that look like block markers inside data
        b.extend([0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0x81]); // local color table of 4 colors
        b.extend([0; 12]);
        b.extend([2, 3, 0x84, 0x1D, 0x05, 0]);
        b.push(0x3B);
        assert_eq!(sniff(&b), Ok(MediaType::Gif));
    }

    #[test]
    fn every_truncation_of_a_gif_is_reported_as_corrupt() {
        let full = gif(1);
        for len in 6..full.len() {
            assert_eq!(
                sniff(&full[..len]),
                Err(MediaError::Corrupt("GIF ends too early")),
                "cut at {len}"
            );
        }
    }

    #[test]
    fn a_gif_without_an_image_or_with_an_unknown_block_is_corrupt() {
        let mut empty = gif(1);
        empty.truncate(19);
        empty.push(0x3B);
        assert_eq!(
            sniff(&empty),
            Err(MediaError::Corrupt("GIF contains no image"))
        );
        let mut unknown = gif(1);
        unknown.insert(19, 0x99);
        assert_eq!(
            sniff(&unknown),
            Err(MediaError::Corrupt("unknown GIF block"))
        );
    }

    #[test]
    fn unknown_content_is_rejected_with_a_clear_message() {
        for bytes in [
            &b"%PDF-1.7"[..],
            b"GIF89",
            b"RIFF\0\0\0\0WAVE",
            b"\x89PNG",
            b"<svg/>",
        ] {
            assert_eq!(sniff(bytes), Err(MediaError::Unsupported), "{bytes:?}");
        }
        assert_eq!(
            MediaError::Unsupported.to_string(),
            "file is not a PNG, JPEG, WEBP or GIF image"
        );
    }

    #[test]
    fn empty_and_oversized_files_are_rejected() {
        assert_eq!(sniff(b""), Err(MediaError::Empty));
        let mut big = PNG_HEADER.to_vec();
        big.resize(MAX_IMAGE_BYTES + 1, 0);
        assert_eq!(
            sniff(&big),
            Err(MediaError::TooLarge {
                size: MAX_IMAGE_BYTES + 1,
                max: MAX_IMAGE_BYTES
            })
        );
        big.truncate(MAX_IMAGE_BYTES);
        assert_eq!(sniff(&big), Ok(MediaType::Png));
    }

    #[test]
    fn media_types_parse_from_content_type_headers() {
        for &media in MediaType::ALL {
            assert_eq!(media.mime().parse::<MediaType>(), Ok(media));
        }
        assert_eq!(
            "IMAGE/JPEG; q=0.9".parse::<MediaType>(),
            Ok(MediaType::Jpeg)
        );
        assert_eq!("image/jpg".parse::<MediaType>(), Ok(MediaType::Jpeg));
        assert!(matches!(
            "image/svg+xml".parse::<MediaType>(),
            Err(MediaError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn media_types_serialize_as_mime_types_and_have_extensions() {
        assert_eq!(serde_json::to_value(MediaType::Webp).unwrap(), "image/webp");
        assert_eq!(
            serde_json::from_value::<MediaType>("image/gif".into()).unwrap(),
            MediaType::Gif
        );
        let extensions: Vec<_> = MediaType::ALL.iter().map(|m| m.extension()).collect();
        assert_eq!(extensions, ["png", "jpg", "webp", "gif"]);
    }
}
