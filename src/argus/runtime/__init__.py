"""Loading models and running them: ONNX Runtime sessions, batching, the model host."""
