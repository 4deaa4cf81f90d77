"""Shared neural building blocks (encoder, attention, decoder, regularisers); kernels/ holds the
hand-written speed kernels they run on."""
