"""One BigGAN iteration: `num_d_steps` D updates, one G update, EMA, SV tracking.

The step is one jitted function over a device mesh (see training/loop.py): the batch
is sharded over the 'data' axis, so BatchNorm statistics are global
(cross-replica BN) and gradients are all-reduced by XLA. With
`num_accumulations` > 1 each update averages gradients over micro-batches
(BN and SN state thread through them, as upstream's accumulation loop).

Batch layout: images (num_d_steps, num_accumulations, micro_batch, H, W, 3),
labels (num_d_steps, num_accumulations, micro_batch): each D step sees a
fresh real batch, as in the paper.

With `augment` set (e.g. 'translation,cutout'), every image D sees, real or
generated, in the D and in the G update, first goes through DiffAugment
(training/augment.py; Zhao et al. 2020); R1 is then taken on the augmented
reals, as in their StyleGAN2 code. augment='' leaves the step unchanged.
With augment_adaptive, each transform applies with ADA's probability p
(state.ada, updated here every ada_interval steps from sign(D(x_real))).

Lazy R1 (r1_every = k > 1; StyleGAN2, Karras et al. 2020, Sec. 3.1): D step
j = step * num_d_steps + i adds the penalty, weighted γ·k, only when j % k == 0,
under lax.cond inside this one jitted step, so the other D steps skip its
double backward pass. Unlike StyleGAN2 the penalty joins that D step's loss
rather than a separate optimizer step, so Adam's lr and betas need no
correction for extra steps.
"""

import functools

import jax
import jax.numpy as jnp
import optax

from biggan_jax import config as config_lib
from biggan_jax.training import augment, ema, faults, losses, regularizers, sigma_remedies
from biggan_jax.training import state as train_state

G_STATE = ('batch_stats', 'spectral')


def _sample_latents(rng, shape, dim_z, num_classes, sharding):
  """z ~ N(0, I) and uniform classes, laid out over the mesh like the batch."""
  kz, ky = jax.random.split(rng)
  z = jax.random.normal(kz, (*shape, dim_z))
  y = jax.random.randint(ky, shape, 0, num_classes)
  return (jax.lax.with_sharding_constraint(z, sharding),
          jax.lax.with_sharding_constraint(y, sharding))


def _accumulate(loss_fn, params, mutables, micro_batches):
  """Mean loss gradient over micro-batches (leading axis); `mutables` thread through."""
  grad_fn = jax.grad(loss_fn, has_aux=True)

  def body(carry, inputs):
    grads_sum, mutables = carry
    grads, (mutables, metrics) = grad_fn(params, mutables, *inputs)
    return (jax.tree.map(jnp.add, grads_sum, grads), mutables), metrics

  zeros = jax.tree.map(jnp.zeros_like, params)
  (grads, mutables), metrics = jax.lax.scan(body, (zeros, mutables), micro_batches)
  n = jax.tree.leaves(micro_batches)[0].shape[0]
  return (jax.tree.map(lambda g: g / n, grads), mutables,
          jax.tree.map(lambda m: m.mean(0), metrics))


def _when(due, fn):
  """fn() where `due`, zeros of its shape elsewhere; lax.cond runs only one branch."""
  out = jax.eval_shape(fn)
  return jax.lax.cond(due, fn, lambda: jnp.zeros(out.shape, out.dtype))


def to_float(images):
  """uint8 images (dataset.image_dtype='uint8': a quarter of the bytes host -> device)
  to [-1, 1] on the device, as BigGAN-PyTorch's ToTensor + Normalize(0.5, 0.5);
  float images pass through."""
  if images.dtype != jnp.uint8:
    return images
  return images.astype(jnp.float32) / 127.5 - 1.0


# ---------------------------------------------------------------------------
# The losses. `mutables` is the pair (G's, D's) of mutable collections: G's
# 'batch_stats' and 'spectral', D's 'spectral' (training/state.py's g_state and
# d_state); every train-mode pass returns them updated, as upstream's buffers.
# ---------------------------------------------------------------------------

def _d_input(config, images, aug_key, p):
  """What D sees: `images`, through DiffAugment when config.augment is set."""
  return augment.diff_augment(images, aug_key, config.augment, p) if config.augment else images


def d_loss_fn(d_params, mutables, x, y, z, y_fake, aug_key, *, config, generator,
              discriminator, g_params, p, r1_due):
  """D's loss: upstream's G_D, G (train mode, no grad) then D on [G(z); x] at once."""
  g_mutables, d_mutables = mutables
  fake, g_new = generator.apply({'params': g_params, **g_mutables}, z, y_fake,
                                train=True, mutable=G_STATE)
  images = _d_input(config, jnp.concatenate([jax.lax.stop_gradient(fake), x]), aug_key, p)
  x = images[fake.shape[0]:]
  logits, d_new = discriminator.apply(
      {'params': d_params, **d_mutables}, images,
      jnp.concatenate([y_fake, y]), train=True, mutable=['spectral'])
  d_fake, d_real = jnp.split(logits, 2)
  loss_real, loss_fake = losses.d_loss(config.loss, d_real, d_fake)
  loss = loss_real + loss_fake
  metrics = dict(d_loss_real=loss_real, d_loss_fake=loss_fake,
                 d_real=d_real.mean(), d_fake=d_fake.mean())
  if config.augment_adaptive:
    metrics['d_real_sign'] = jnp.sign(d_real).mean()  # what ADA's r_t averages
  if config.r1:
    d_fn = lambda xs: discriminator.apply({'params': d_params, **d_new}, xs, y, train=False)
    r1 = lambda: losses.r1_penalty(d_fn, x)
    metrics['r1'] = r1() if config.r1_every == 1 else _when(r1_due, r1)
    loss += 0.5 * config.r1_gamma * config.r1_every * metrics['r1']
  if config.ortho_beta_d > 0:
    loss += regularizers.ortho_penalty(d_params, config.ortho_beta_d,
                                       reference_grad=config.ortho_reference_grad)
  return loss, ((g_new, d_new), metrics)


def g_loss_fn(g_params, mutables, z, y_fake, aug_key, *, config, generator, discriminator,
              d_params, p):
  """G's loss on D's logits for G(z), plus the orthogonal (and mode-seeking) terms."""
  g_mutables, d_mutables = mutables
  fake, g_new = generator.apply({'params': g_params, **g_mutables}, z, y_fake,
                                train=True, mutable=G_STATE)
  d_fake, d_new = discriminator.apply({'params': d_params, **d_mutables},
                                      _d_input(config, fake, aug_key, p), y_fake,
                                      train=True, mutable=['spectral'])
  g_loss = losses.g_loss(config.loss, d_fake)
  ortho = regularizers.ortho_penalty(g_params, config.ortho_beta,
                                     reference_grad=config.ortho_reference_grad)
  metrics = dict(g_loss=g_loss, ortho=ortho)
  loss = g_loss + ortho
  if config.mode_seeking > 0:
    metrics['mode_seeking'] = losses.mode_seeking(fake, z)
    loss += config.mode_seeking * metrics['mode_seeking']
  return loss, ((g_new, d_new), metrics)


def make_train_step(config, generator, discriminator, latent_sharding, param_layout=None):
  """Returns `train_step(state, batch) -> (state, metrics)`, to be jitted.

  `param_layout` (training/sharding.py's ParamLayout; None: replicated) gathers
  sharded weights for compute and reduce-scatters their gradients.
  """
  m = config.model
  gather = param_layout.gather if param_layout else (lambda t: t)
  scatter = param_layout.scatter if param_layout else (lambda t: t)
  g_tx, d_tx = train_state.optimizers(config)
  sample = functools.partial(_sample_latents, dim_z=m.dim_z,
                             num_classes=m.num_classes, sharding=latent_sharding)

  config_lib.augmentations(config.augment)  # fails early on an unknown policy

  def aug_keys(rng, acc_shape):
    """One DiffAugment key per micro-batch; fold_in keeps the z, y stream as without it."""
    return jax.random.split(jax.random.fold_in(rng, 1), acc_shape[0])

  context = dict(config=config, generator=generator, discriminator=discriminator)

  def augment_p(state):
    return state.ada.p if config.augment_adaptive else None

  def d_update(state, batch_i, rng, i):
    acc_shape = batch_i['label'].shape
    z, y_fake = sample(rng, acc_shape)
    r1_due = (state.step * config.num_d_steps + i) % config.r1_every == 0
    grads, (g_state, d_state), metrics = _accumulate(
        functools.partial(d_loss_fn, **context, g_params=state.g_params, p=augment_p(state),
                          r1_due=r1_due), state.d_params,
        (state.g_state, state.d_state),
        (batch_i['image'], batch_i['label'], z, y_fake, aug_keys(rng, acc_shape)))
    grads = scatter(grads)
    grads = sigma_remedies.add_penalty(grads, state.d_params, config, 'D', metrics)
    updates, d_opt_state = d_tx.update(grads, state.d_opt_state, state.d_params)
    metrics['d_grad_norm'] = optax.global_norm(grads)
    if config.r1 and config.r1_every > 1:
      metrics['r1_due'] = r1_due.astype(jnp.float32)
    d_params = sigma_remedies.after_update(
        gather(optax.apply_updates(state.d_params, updates)), config, 'D')
    return state.replace(d_params=d_params,
                         d_opt_state=d_opt_state, g_state=g_state, d_state=d_state), metrics

  def g_update(state, acc_shape, rng):
    z, y_fake = sample(rng, acc_shape)
    if config.mode_seeking > 0:  # the second half repeats the first half's classes.
      half = y_fake[:, :acc_shape[1] // 2]
      y_fake = jax.lax.with_sharding_constraint(jnp.concatenate([half, half], 1),
                                                latent_sharding)
    grads, (g_state, d_state), metrics = _accumulate(
        functools.partial(g_loss_fn, **context, d_params=state.d_params, p=augment_p(state)),
        state.g_params,
        (state.g_state, state.d_state), (z, y_fake, aug_keys(rng, acc_shape)))
    grads = scatter(grads)
    grads = sigma_remedies.add_penalty(grads, state.g_params, config, 'G', metrics)
    updates, g_opt_state = g_tx.update(grads, state.g_opt_state, state.g_params)
    metrics['g_grad_norm'] = optax.global_norm(grads)
    g_params = sigma_remedies.after_update(
        gather(optax.apply_updates(state.g_params, updates)), config, 'G')
    return state.replace(g_params=g_params,
                         g_opt_state=g_opt_state, g_state=g_state, d_state=d_state), metrics

  def track_sv(state):
    return jax.lax.cond(
        state.step % config.sv_every == 0,
        lambda: train_state.track_singular_values(state.g_params, state.d_params),
        lambda: state.sv)

  def train_step(state, batch):
    state = state.replace(g_params=gather(state.g_params), d_params=gather(state.d_params))
    batch = dict(batch, image=to_float(batch['image']))
    rng = jax.random.fold_in(state.rng, state.step)
    d_keys = jax.random.split(rng, config.num_d_steps + 1)
    metrics = []
    for i in range(config.num_d_steps):
      batch_i = jax.tree.map(lambda a: a[i], batch)
      state, d_metrics = d_update(state, batch_i, d_keys[i], i)
      metrics.append(d_metrics)
    state, g_metrics = g_update(state, batch['label'].shape[1:], d_keys[-1])
    ema_decay = ema.decay(config, state.step)
    iteration = state.step + 1  # upstream's itr: this is the first iteration at step 0
    state = state.replace(
        ema_params=ema.update(state.ema_params, state.g_params, iteration,
                              ema_decay, config.ema_start),
        ema_state=ema.update(state.ema_state, state.g_state, iteration,
                             ema_decay, config.ema_start))
    p = augment_p(state)
    state = state.replace(step=state.step + 1)
    state = state.replace(sv=track_sv(state))  # after steps sv_every, 2 sv_every, ...
    if config.augment_adaptive:
      signs = jnp.stack([m['d_real_sign'] for m in metrics])
      state = state.replace(ada=augment.ada_update(state.ada, signs, state.step, config))
    metrics = {**jax.tree.map(lambda *m: jnp.mean(jnp.stack(m)), *metrics), **g_metrics}
    if 'r1_due' in metrics:  # lazy R1: the penalty of the D steps that took it (0: none did)
      metrics['r1'] /= jnp.maximum(metrics.pop('r1_due'), 1 / config.num_d_steps)
    if p is not None:
      metrics['augment_p'] = p
    # One flag for the loop (training/faults.py): no non-finite state is ever saved.
    metrics['finite'] = faults.all_finite((state, metrics))
    return state, metrics

  return train_step
