"""common.py: error descriptions, settings, the generic converter."""

import pytest


def _raise_in_adapter(exc):
    code = compile('def f(exc):\n    raise exc\n', '<azfunc-common>', 'exec')
    ns = {}
    exec(code, ns)
    ns['f'](exc)


def test_describe_message_and_user_frames(common):
    def user():
        raise ValueError('bad value')
    try:
        user()
    except ValueError as exc:
        message, stack = common.describe(exc)
    assert message == 'ValueError: bad value'
    assert 'in user' in stack and 'raise ValueError' in stack


def test_describe_hides_adapter_frames(common):
    try:
        _raise_in_adapter(KeyError('k'))
    except KeyError as exc:
        message, stack = common.describe(exc)
    assert message == "KeyError: 'k'"
    assert '<azfunc-' not in stack


def test_describe_unprintable_exception(common):
    class Bad(Exception):
        def __str__(self):
            raise RuntimeError('no')
    message, _ = common.describe(Bad())
    assert message.startswith('Unhandled exception in function.')


def test_run_returns_tagged_outcome(common):
    assert common.run(lambda a, b: a + b, 1, 2) == (0, 3)

    def exits():
        raise SystemExit(3)
    rc, (message, _) = common.run(exits)
    assert rc == 1 and message == 'SystemExit: 3'


@pytest.mark.parametrize('value,true,false', [
    ('1', True, False), (' TRUE ', True, False), ('yes', True, False),
    ('0', False, True), ('False', False, True), ('n', False, True),
    ('maybe', False, False), (None, False, False)])
def test_env_true_false(common, monkeypatch, value, true, false):
    if value is None:
        monkeypatch.delenv('AZF_TEST_FLAG', raising=False)
    else:
        monkeypatch.setenv('AZF_TEST_FLAG', value)
    assert common.env_true('AZF_TEST_FLAG') is true
    assert common.env_false('AZF_TEST_FLAG') is false


def test_generic_binding_annotations(common):
    g = common.GenericBinding
    assert g.check_input_type_annotation(str)
    assert g.check_input_type_annotation(bytes)
    assert not g.check_input_type_annotation(bytearray)
    assert g.check_output_type_annotation(bytearray)
    assert not g.check_output_type_annotation(int)
    assert not g.has_trigger_support()


def test_converter_lookup(common):
    import azure.functions.http as http
    assert common.converter('httpTrigger') is http.HttpRequestConverter
    assert common.converter('http') is http.HttpResponseConverter
    assert common.converter('noSuchBinding') is common.GenericBinding


def test_has_implicit_output(common):
    # The library's converters without has_implicit_output have none; the
    # generic fallback has one for every type but durableClient.
    assert not common.has_implicit_output('http')
    assert common.has_implicit_output('unknownBinding')
    assert not common.has_implicit_output('durableClient')


def test_hooks_off_unless_enabled(common, monkeypatch):
    monkeypatch.setattr(common, 'extensions_enabled', False)
    assert common.hooks(object()) == (None, None)


def test_run_hooks_logs_and_continues(common, caplog):
    calls = []

    class Hook:
        def __init__(self, name, fail):
            self.ext_name, self.fail = name, fail

        def ext_impl(self, *args):
            calls.append((self.ext_name, args))
            if self.fail:
                raise RuntimeError('hook failed')

    hooks = type('H', (), {'pre': [Hook('a', True), Hook('b', False)]})()
    common.run_hooks(hooks, 'pre', 1, 2)
    assert calls == [('a', (1, 2)), ('b', (1, 2))]
    assert 'extension a failed in pre' in caplog.text
    common.run_hooks(None, 'pre')  # no hooks: nothing to do
