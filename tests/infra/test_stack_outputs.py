"""infra/stack.py: the outputs the CLI and the README read, under the keys in names.Output."""

from __future__ import annotations

from contract.names import Output


def test_every_output_key_is_exported(template):
    outputs = template.to_json()["Outputs"]
    expected = {v for k, v in vars(Output).items() if not k.startswith("_")}

    assert expected <= set(outputs)


def test_the_image_uri_output_is_the_built_image(template):
    outputs = template.to_json()["Outputs"]

    assert outputs[Output.IMAGE_URI]["Value"]["Fn::GetAtt"][1] == "ImageUri"
