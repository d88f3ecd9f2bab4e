"""The one construction of the jitted init and train step, their shardings and the batch.

The training loop, `--mode=compile` (training/compile_check.py) and
benchmarks/train_step.py all build the step here, so what the TPU compiler
measures ahead of time is the program a run executes: the same mesh axis,
state layout (replicated, or FSDP with `config.fsdp`), batch layout, in/out
shardings and donation of the state (big_vision's train.py sections "create
model", "shard and transfer", "update step").
"""

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding

from biggan_jax import models
from biggan_jax.training import sharding
from biggan_jax.training import state as train_state
from biggan_jax.training import step as train_step


@dataclasses.dataclass(frozen=True)
class TrainStep:
  """What a run needs to create its state and take steps on `mesh`."""
  mesh: Mesh
  generator: Any
  discriminator: Any
  layout: sharding.ParamLayout
  state_sharding: Any            # a TrainState of NamedShardings
  batch_sharding: NamedSharding  # images and labels: axis 2 is the global micro-batch
  init: Callable                 # jitted: rng -> TrainState, laid out as state_sharding
  step: Callable                 # jitted: (state, batch) -> (state, metrics); donates state


def build(config, devices=None) -> TrainStep:
  """The jitted init and step of `config` over a 'data' mesh of `devices`.

  `devices` defaults to every device of every host; --mode=compile passes a
  TPU topology's compile-only devices. Nothing is traced or compiled here.
  """
  mesh = sharding.make_mesh(devices)
  generator = models.create_generator(config.model)
  discriminator = models.create_discriminator(config.model)
  layout = sharding.ParamLayout(mesh, bool(config.fsdp))
  create = lambda k: train_state.create(config, generator, discriminator, k)
  state_sharding = layout.state(jax.eval_shape(create, jax.random.PRNGKey(0)))
  batch_sharding = sharding.batch_sharding(mesh, 2)
  repl = sharding.replicated(mesh)
  init = jax.jit(create, out_shardings=state_sharding)
  step = jax.jit(
      train_step.make_train_step(config, generator, discriminator,
                                 sharding.batch_sharding(mesh, 1), layout),
      in_shardings=(state_sharding, batch_sharding),
      out_shardings=(state_sharding, repl), donate_argnums=0)
  return TrainStep(mesh, generator, discriminator, layout, state_sharding, batch_sharding,
                   init, step)


def abstract_state(train: TrainStep):
  """The state as ShapeDtypeStructs carrying their shardings (no memory allocated)."""
  shapes = jax.eval_shape(train.init, jax.random.PRNGKey(0))
  return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh),
                      shapes, train.state_sharding)


def abstract_batch(config, train: TrainStep) -> dict:
  """The global batch the step takes (data/layout.py): images
  (num_d_steps, num_accumulations, micro_batch, R, R, 3) in dataset.image_dtype,
  labels (num_d_steps, num_accumulations, micro_batch) int32."""
  lead = (config.num_d_steps, config.num_accumulations,
          config.batch_size // config.num_accumulations)
  r = config.model.resolution
  return {'image': jax.ShapeDtypeStruct((*lead, r, r, 3), jnp.dtype(config.dataset.image_dtype),
                                        sharding=train.batch_sharding),
          'label': jax.ShapeDtypeStruct(lead, jnp.int32, sharding=train.batch_sharding)}
