"""Data: published-format parsers (formats), sources (keras | dir: | sample), tf.data pipeline."""
