"""Converters from BigGAN-PyTorch, pytorch-pretrained-BigGAN and TF-Hub."""
