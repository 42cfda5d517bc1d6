"""The pure model layer: the MCF autoencoder, training with failure injection, calibration, artifacts."""
