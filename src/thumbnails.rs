//! Thumbnails of uploaded images: a JPEG of at most 200 x 200 pixels
//! (aspect kept, never enlarged), made on a blocking thread behind a small
//! semaphore. Decoding is bounded: the dimensions are read from the
//! headers first and an image of more than [`MAX_PIXELS`] is refused
//! before any pixel is allocated.

use bytes::Bytes;
use fast_image_resize as fr;
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageError, ImageFormat, ImageReader};
use std::io::Cursor;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The longest side of a thumbnail.
pub const THUMBNAIL_SIDE: u32 = 200;

/// Pixels an uploaded image may have (about 40 megapixels: 160 MB decoded
/// at 4 bytes a pixel).
pub const MAX_PIXELS: u64 = 40_000_000;

/// The most one decode may allocate, for the decoders that count.
const MAX_DECODE_BYTES: u64 = MAX_PIXELS * 4 + (16 << 20);

/// JPEG quality of a thumbnail.
const JPEG_QUALITY: u8 = 80;

/// The MIME type of every thumbnail.
pub const THUMBNAIL_TYPE: &str = "image/jpeg";

/// A thumbnail made of an upload.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    /// Its JPEG bytes.
    pub bytes: Bytes,
    /// Its width in pixels.
    pub width: u32,
    /// Its height in pixels.
    pub height: u32,
}

/// Why no thumbnail could be made.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    /// The bytes do not decode as the declared image type (400).
    #[error("Invalid image: {0}")]
    Undecodable(String),
    /// The image has more pixels than [`MAX_PIXELS`] (400).
    #[error("Image too large: {width} x {height} pixels (max {MAX_PIXELS} pixels)")]
    TooManyPixels {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// Every decode slot and waiting place is taken (503).
    #[error("Too many images being processed; retry shortly")]
    Busy,
}

/// Makes thumbnails, at most `workers` at once and with at most
/// `waiting` more queued (past that, [`ThumbnailError::Busy`]).
pub struct Thumbnailer {
    workers: Arc<Semaphore>,
    places: Arc<Semaphore>,
}

impl Thumbnailer {
    /// A thumbnailer of `workers` concurrent decodes (one per core is
    /// plenty: decoding is CPU-bound) and `waiting` queued uploads.
    pub fn new(workers: usize, waiting: usize) -> Self {
        Thumbnailer {
            workers: Arc::new(Semaphore::new(workers.max(1))),
            places: Arc::new(Semaphore::new(workers.max(1) + waiting)),
        }
    }

    /// The thumbnail of an upload of type `mime` (already checked by its
    /// magic numbers), or `None` for a type that gets none.
    pub async fn make(&self, mime: &str, data: Bytes) -> Result<Option<Thumbnail>, ThumbnailError> {
        let Some(format) = thumbnailed_format(mime) else {
            return Ok(None);
        };
        let place = self
            .places
            .clone()
            .try_acquire_owned()
            .map_err(|_| ThumbnailError::Busy)?;
        let worker = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ThumbnailError::Busy)?;
        // The permits move into the task: a caller that gives up does not
        // free the slot while its decode still runs.
        let made = tokio::task::spawn_blocking(move || {
            let _held = (place, worker);
            thumbnail_of(&data, format)
        })
        .await
        .map_err(|e| ThumbnailError::Undecodable(format!("decoder failed: {e}")))?;
        made.map(Some)
    }
}

/// The decoder of a type that gets a thumbnail.
fn thumbnailed_format(mime: &str) -> Option<ImageFormat> {
    match mime {
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/png" => Some(ImageFormat::Png),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// The size of a thumbnail of a `width` x `height` image: inside
/// [`THUMBNAIL_SIDE`] squared, aspect kept, never larger than the image.
pub fn fitted(width: u32, height: u32) -> (u32, u32) {
    let side = u64::from(THUMBNAIL_SIDE);
    let (w, h) = (u64::from(width.max(1)), u64::from(height.max(1)));
    if w <= side && h <= side {
        return (w as u32, h as u32);
    }
    let scaled = |long: u64, short: u64| ((short * side + long / 2) / long).max(1);
    if w >= h {
        (THUMBNAIL_SIDE, scaled(w, h) as u32)
    } else {
        (scaled(h, w) as u32, THUMBNAIL_SIDE)
    }
}

fn decode_error(e: ImageError) -> ThumbnailError {
    ThumbnailError::Undecodable(e.to_string())
}

/// Decodes (bounded), orients, scales and encodes one image.
fn thumbnail_of(data: &[u8], format: ImageFormat) -> Result<Thumbnail, ThumbnailError> {
    // The headers are read without limits (an upload is at most
    // `max_upload` bytes), so that too many pixels is told as such; the
    // decode itself runs within them.
    let mut reader = ImageReader::with_format(Cursor::new(data), format);
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ThumbnailError::TooManyPixels { width, height });
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    decoder.set_limits(limits).map_err(decode_error)?;
    let orientation = decoder.orientation().map_err(decode_error)?;
    let mut decoded = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
    decoded.apply_orientation(orientation);
    let source = (decoded.width(), decoded.height());
    let (width, height) = fitted(source.0, source.1);
    let rgb = if decoded.color().has_alpha() {
        let rgba = decoded.into_rgba8().into_raw();
        flatten_onto_white(&scale(rgba, source, (width, height), fr::PixelType::U8x4)?)
    } else {
        let rgb = decoded.into_rgb8().into_raw();
        scale(rgb, source, (width, height), fr::PixelType::U8x3)?
    };
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
        .encode(&rgb, width, height, ExtendedColorType::Rgb8)
        .map_err(decode_error)?;
    Ok(Thumbnail {
        bytes: bytes.into(),
        width,
        height,
    })
}

/// Scales pixels of `source` dimensions to `target` (a copy when equal).
fn scale(
    pixels: Vec<u8>,
    source: (u32, u32),
    target: (u32, u32),
    pixel_type: fr::PixelType,
) -> Result<Vec<u8>, ThumbnailError> {
    if source == target {
        return Ok(pixels);
    }
    let resize_error = |e: &dyn std::fmt::Display| ThumbnailError::Undecodable(e.to_string());
    let from = fr::images::Image::from_vec_u8(source.0, source.1, pixels, pixel_type)
        .map_err(|e| resize_error(&e))?;
    let mut to = fr::images::Image::new(target.0, target.1, pixel_type);
    fr::Resizer::new()
        .resize(&from, &mut to, None)
        .map_err(|e| resize_error(&e))?;
    Ok(to.into_vec())
}

/// RGB of RGBA pixels laid over white (JPEG has no transparency).
fn flatten_onto_white(rgba: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(rgba.len() / 4 * 3);
    for pixel in rgba.chunks_exact(4) {
        let alpha = u16::from(pixel[3]);
        for &channel in &pixel[..3] {
            let over_white = (u16::from(channel) * alpha + 255 * (255 - alpha) + 127) / 255;
            rgb.push(over_white as u8);
        }
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::{ThumbnailError, fitted, thumbnail_of};
    use image::{ImageFormat, Rgba, RgbaImage};

    #[test]
    fn a_thumbnail_fits_in_the_square_keeps_its_aspect_and_never_grows() {
        assert_eq!(fitted(1000, 500), (200, 100));
        assert_eq!(fitted(500, 1000), (100, 200));
        assert_eq!(fitted(300, 300), (200, 200));
        assert_eq!(fitted(120, 80), (120, 80));
        assert_eq!(fitted(200, 200), (200, 200));
        assert_eq!(fitted(10_000, 3), (200, 1));
        assert_eq!(fitted(333, 201), (200, 121));
    }

    #[test]
    fn a_transparent_png_becomes_a_jpeg_on_white() {
        let image = RgbaImage::from_pixel(400, 100, Rgba([0, 0, 0, 0]));
        let mut png = Vec::new();
        image
            .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let thumbnail = thumbnail_of(&png, ImageFormat::Png).unwrap();
        assert_eq!((thumbnail.width, thumbnail.height), (200, 50));
        let decoded = image::load_from_memory_with_format(&thumbnail.bytes, ImageFormat::Jpeg)
            .unwrap()
            .into_rgb8();
        assert!(decoded.pixels().all(|p| p.0.iter().all(|c| *c > 240)));
    }

    #[test]
    fn bytes_that_do_not_decode_are_refused() {
        let broken = b"\x89PNG\r\n\x1a\nthis is not a png at all";
        assert!(matches!(
            thumbnail_of(broken, ImageFormat::Png),
            Err(ThumbnailError::Undecodable(_))
        ));
    }
}
