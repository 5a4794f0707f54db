import pytest

from detrain import cli


@pytest.mark.parametrize("command", ["rehearse", "local-train"])
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])

    assert exit_.value.code == 0
    assert "usage: detrain " + command in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["local-train", "no-such-folder"], "dataset folder 'no-such-folder' does not exist"),
        (["local-train", ".", "--gpus", "all"], "--gpus is for --docker runs"),
        (["local-train", ".", "--name", "bad_name"], "job name 'bad_name' is not allowed"),
        (["local-train", ".", "--hp", "seed=-1"], "'seed' = -1 is out of range"),
        (["local-train", ".", "--instance-count", "0"], "--instance-count 0 is not allowed"),
        (["rehearse", "--instance-count", "9"], "--instance-count 9 is not allowed"),
        (["rehearse", "--images", "1"], "--images 1 is too few"),
        (["rehearse", "--dataset", "no-such-folder"], "--dataset 'no-such-folder' is not a folder"),
        (["rehearse", "--tune", "--serve"], "--serve follows a single job"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
