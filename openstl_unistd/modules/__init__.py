"""Building blocks of the models: adapters, temporal module, task encoders/decoders, backbone."""
