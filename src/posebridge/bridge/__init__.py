"""The skeleton bridge (ACAE): pseudo-ground-truth, the affine-combining autoencoder, fine-tuning, consistency."""
