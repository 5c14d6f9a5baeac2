//! Thumbnails: an image scaled down to fit a square, as JPEG. Pure and synchronous (decoding
//! is CPU work): callers run it off the async runtime.

use std::io::Cursor;

use image::{DynamicImage, ImageReader, Limits, RgbImage, codecs::jpeg::JpegEncoder};

/// The sizes (longest side, in pixels) thumbnails come in.
pub const SIZES: [u32; 3] = [128, 256, 512];

/// Largest width or height decoded; uploads are at most 20 MB, but a small file can claim
/// a huge canvas.
pub const MAX_SIDE: u32 = 12_000;

/// Most memory one decode may allocate.
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

const JPEG_QUALITY: u8 = 80;

#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error("the image could not be decoded: {0}")]
    Decode(#[source] image::ImageError),
    #[error("the image could not be encoded: {0}")]
    Encode(#[source] image::ImageError),
}

/// `bytes` (PNG, JPEG, WEBP or GIF) scaled to fit `size`×`size` (never enlarged), keeping its
/// aspect ratio, with transparency flattened onto white, as a JPEG.
pub fn render(bytes: &[u8], size: u32) -> Result<Vec<u8>, ThumbnailError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ThumbnailError::Decode(e.into()))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader.decode().map_err(ThumbnailError::Decode)?;
    let scaled = if image.width().max(image.height()) > size {
        image.thumbnail(size, size)
    } else {
        image
    };
    let rgb = flatten(&scaled);
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
        .encode_image(&rgb)
        .map_err(ThumbnailError::Encode)?;
    Ok(out)
}

/// The image on a white background (JPEG has no transparency).
fn flatten(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let blend =
            |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        image::Rgb([blend(r), blend(g), blend(b)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbaImage::from_pixel(width, height, image::Rgba([10, 200, 30, 128]));
        let mut out = Vec::new();
        DynamicImage::ImageRgba8(image)
            .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn a_wide_image_is_scaled_to_the_size_on_its_longest_side_and_flattened() {
        let thumb = render(&png(600, 300), 128).unwrap();
        let decoded = image::load_from_memory(&thumb).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (128, 64));
        assert!(!decoded.color().has_alpha());
        // Half-transparent green over white.
        let [r, g, _] = decoded.to_rgb8().get_pixel(64, 32).0;
        assert!(r > 100 && g > 200, "{r} {g}");
    }

    #[test]
    fn a_small_image_is_not_enlarged() {
        let decoded = image::load_from_memory(&render(&png(40, 20), 256).unwrap()).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (40, 20));
    }

    /// CRC-32 (as PNG chunks use it).
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn a_huge_canvas_is_refused_by_the_limits_before_it_is_allocated() {
        // A valid PNG whose header claims 20000x20000 pixels.
        let mut bytes = png(1, 1);
        bytes[16..20].copy_from_slice(&20_000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&20_000u32.to_be_bytes());
        let crc = crc32(&bytes[12..29]);
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        let error = render(&bytes, 128).unwrap_err();
        assert!(
            matches!(error, ThumbnailError::Decode(image::ImageError::Limits(_))),
            "{error:?}"
        );
    }

    #[test]
    fn garbage_is_a_decode_error() {
        assert!(matches!(
            render(b"not an image", 128),
            Err(ThumbnailError::Decode(_))
        ));
    }
}
