"""Data: published-format parsers (formats), sources (keras | dir: | sample), pipelines
(tf.data; NumPy PyDatasets on JAX)."""
