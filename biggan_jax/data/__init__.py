"""Data: class-conditional image batches in the train step's layout.

Sources (TFDS datasets, image folders, the digits demo, synthetic data) are
resolved and checked in data/sources.py, decoded and cropped in
data/preprocess.py, and streamed, resumably and host by host, by
data/pipeline.py; docs/data.md says how the stream is laid out.
"""


class DatasetError(ValueError):
  """A dataset that cannot be read; the message names the path or name."""
