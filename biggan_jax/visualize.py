"""PNG sample sheets and the paper's training plots (Fig. 3: σ0 over time)."""

import json
import os

import numpy as np


def to_uint8(images) -> np.ndarray:
  """[-1, 1] float images -> uint8."""
  return np.asarray(np.clip((np.asarray(images, np.float32) + 1.0) * 127.5 + 0.5, 0, 255),
                    np.uint8)


def image_grid(images, rows: int) -> np.ndarray:
  """(N, H, W, 3) in [-1, 1] -> one (rows*H, cols*W, 3) uint8 sheet."""
  images = to_uint8(images)
  n, h, w, c = images.shape
  cols = -(-n // rows)
  sheet = np.full((rows * h, cols * w, c), 255, np.uint8)
  for i in range(n):
    r, col = divmod(i, cols)
    sheet[r * h:(r + 1) * h, col * w:(col + 1) * w] = images[i]
  return sheet


def save_image_grid(images, path: str, rows: int) -> None:
  from PIL import Image
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  Image.fromarray(image_grid(images, rows)).save(path)


def read_jsonl(path: str) -> list[dict]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def plot_training(metrics_path: str, out_dir: str) -> list[str]:
  """Writes sigma0.png (σ0 of every G and D layer over steps) and losses.png."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  rows = read_jsonl(metrics_path)
  written = []
  sv_rows = [r for r in rows if any(k.startswith('sv0/') for k in r)]
  if sv_rows:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, net in zip(axes, ('G', 'D')):
      keys = sorted({k for r in sv_rows for k in r if k.startswith(f'sv0/{net}/')})
      for k in keys:
        ax.plot([r['step'] for r in sv_rows], [r.get(k, np.nan) for r in sv_rows],
                lw=0.8)
      ax.set_title(f'{net}: σ0 of each layer')
      ax.set_xlabel('step')
    fig.tight_layout()
    written.append(os.path.join(out_dir, 'sigma0.png'))
    fig.savefig(written[-1], dpi=80)
    plt.close(fig)
  loss_keys = ('d_loss_real', 'd_loss_fake', 'g_loss')
  loss_rows = [r for r in rows if 'g_loss' in r]
  if loss_rows:
    fig, ax = plt.subplots(figsize=(6, 4))
    for k in loss_keys:
      ax.plot([r['step'] for r in loss_rows], [r[k] for r in loss_rows], label=k)
    ax.legend()
    ax.set_xlabel('step')
    fig.tight_layout()
    written.append(os.path.join(out_dir, 'losses.png'))
    fig.savefig(written[-1], dpi=80)
    plt.close(fig)
  return written
