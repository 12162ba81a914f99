"""A recurrent layer seen with its dropout masks held fixed, for finite differences."""


def fixed_masks(layer):
    """A gradcheck-able view of ``layer`` whose every forward draws the same masks (the
    layer's generator state is restored before each call)."""
    saved = layer.rng.bit_generator.state

    class FixedMasks:
        params, grads, zero_grad = layer.params, layer.grads, layer.zero_grad

        def forward(self, x):
            layer.rng.bit_generator.state = saved
            return layer.forward(x)

        def backward(self, dout, dstate):
            return layer.backward(dout, dstate)[0]
    return FixedMasks()
