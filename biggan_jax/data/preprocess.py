"""BigGAN-PyTorch's preprocessing in tf.data: centre crop on the short side, resize, flip.

As its CenterCropLongEdge + Resize: a centre square on the short side (JPEGs
decode only the crop window), an antialiased resize to model.resolution, an
optional horizontal flip (deterministic per example), [-1, 1]. The default
'bilinear' with antialias=True is a triangle filter stretched by the
downscaling factor: the filter PIL's BILINEAR applies when BigGAN-PyTorch's
torchvision `Resize` prepares ImageNet, so the images (and the Inception
statistics) match upstream's. An image that cannot be decoded becomes a
placeholder marked invalid, never an error (`preprocess_or_skip`).
"""

from biggan_jax.data.sources import import_tf


def decode_and_crop(encoded):
  """Encoded JPEG/PNG/GIF/BMP -> uint8 (s, s, 3): the centre square on the short side.

  JPEGs decode only the crop window (tf.io.decode_and_crop_jpeg). Raises
  InvalidArgumentError on data that is not a readable image.
  """
  tf = import_tf()

  def window(h, w):
    s = tf.minimum(h, w)
    return (h - s) // 2, (w - s) // 2, s

  def jpeg():
    shape = tf.io.extract_jpeg_shape(encoded)
    top, left, s = window(shape[0], shape[1])
    return tf.io.decode_and_crop_jpeg(encoded, tf.stack([top, left, s, s]), channels=3)

  def other():
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    shape = tf.shape(image)
    top, left, s = window(shape[0], shape[1])
    return image[top:top + s, left:left + s]

  return tf.cond(tf.io.is_jpeg(encoded), jpeg, other)


def preprocess(encoded, resolution: int, resize_method: str = 'bilinear',
               flip_seed=None, image_dtype: str = 'float32'):
  """Encoded image -> float32 (resolution, resolution, 3) in [-1, 1], or uint8.

  Centre crop on the short side, antialiased resize (skipped when the crop is
  already resolution x resolution, so such images pass through exactly), a
  horizontal flip with probability 1/2 when `flip_seed` (a stateless [2] seed)
  is given. image_dtype 'uint8': the resized pixels rounded to 0..255, as
  PIL's resize leaves them upstream; the train step scales them on the device.
  """
  tf = import_tf()
  image = decode_and_crop(encoded)
  image = tf.cond(
      tf.reduce_all(tf.shape(image)[:2] == resolution),
      lambda: tf.cast(image, tf.float32),
      lambda: tf.image.resize(image, [resolution, resolution], method=resize_method,
                              antialias=True))
  image = tf.ensure_shape(image, [resolution, resolution, 3])
  if flip_seed is not None:
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
  if image_dtype == 'uint8':
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)
  return tf.clip_by_value(image / 127.5 - 1.0, -1.0, 1.0)


def preprocess_or_skip(config, read_file: bool):
  """Element -> exactly one element: the preprocessed image, or a placeholder.

  tf.data cannot catch an error inside a map, so each example runs in its own
  one-element dataset with ignore_errors(), followed by a placeholder marked
  valid=False; take(1) keeps whichever comes first. Slots never disappear.
  """
  tf = import_tf()
  r = config.model.resolution
  method, flip = config.dataset.resize_method, config.dataset.random_flip

  def load(ex):
    encoded = tf.io.read_file(ex['source']) if read_file else ex['encoded']
    image = preprocess(encoded, r, method, ex['flip_seed'] if flip else None,
                       config.dataset.image_dtype)
    return {'image': image, 'label': ex['label'], 'valid': True, 'source': ex['source']}

  def one(ex):
    placeholder = {'image': tf.zeros([r, r, 3], config.dataset.image_dtype),
                   'label': ex['label'], 'valid': False,
                   'source': ex['source']}
    good = tf.data.Dataset.from_tensors(ex).map(load).ignore_errors()
    return good.concatenate(tf.data.Dataset.from_tensors(placeholder)).take(1)

  return one
