"""Training: the settings, MNIST on the device, batch augmentation and the training loop."""
