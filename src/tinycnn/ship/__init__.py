"""Shipping a trained model: weights files, inference, preprocessing of pictures, ONNX, int8 and C."""
