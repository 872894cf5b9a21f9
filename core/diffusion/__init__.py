"""Denoising diffusion (Ho et al. 2020) on diffusers' UNet2DModel and schedulers: training with EMA
and exact resume, DDPM / DDIM / DPM-Solver sampling, the forward process made visible, and a
Fréchet distance in a robustlab classifier's feature space."""
