"""TF1 hub module folders written with given variable names (tests of --source=tfhub)."""

import pathlib


def write_variables(folder: pathlib.Path, variables: dict, prefix: str = '') -> None:
  """variables/variables.{index,data-*} with exactly these names, as a hub module has."""
  import tensorflow as tf
  (folder / 'variables').mkdir(parents=True, exist_ok=True)
  graph = tf.Graph()
  with graph.as_default():
    var_list = {prefix + name: tf.compat.v1.Variable(value, name=f'v{i}')
                for i, (name, value) in enumerate(variables.items())}
    saver = tf.compat.v1.train.Saver(var_list=var_list)
    with tf.compat.v1.Session(graph=graph) as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      saver.save(sess, str(folder / 'variables' / 'variables'), write_meta_graph=False,
                 write_state=False)
