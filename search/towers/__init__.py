"""The towers: encoders on PyTorch, ONNX Runtime or OpenVINO, their export, and the backend choice."""
