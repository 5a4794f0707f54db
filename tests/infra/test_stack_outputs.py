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


def test_the_serverless_image_output_is_the_cpu_image_the_build_made(synthesized):
    outputs = synthesized.template.to_json()["Outputs"]
    ((build_id, build),) = synthesized.resources("Custom::TrainingImageBuild").items()

    value = outputs[Output.SERVERLESS_IMAGE_URI]["Value"]

    assert value == {"Fn::GetAtt": [build_id, "ServingImageUri"]}
    serving_tag = build["Properties"]["ServingImageTag"]
    assert build["Properties"]["ServingImageUri"]["Fn::Join"][1][-1] == f":{serving_tag}"
