"""File formats read without the library that writes them: PyTorch's, without torch.

Below both checkpoints/ (the converters read BigGAN-PyTorch's and
pytorch-pretrained-BigGAN's weights) and evaluation/ (the FID Inception's
weights), so that neither imports the other for them.
"""
