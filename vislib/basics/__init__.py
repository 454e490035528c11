"""The course's basics, computed on real networks: convolution arithmetic, upsampling, and why
depth needs shortcuts. Import the modules: `vislib.basics.arithmetic`, `.upsampling`, `.depth`."""
