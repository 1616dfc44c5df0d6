"""Text-translation packs: Marian (OPUS-MT), NLLB-200 and M2M100 exported to the Optimum ONNX layout."""
