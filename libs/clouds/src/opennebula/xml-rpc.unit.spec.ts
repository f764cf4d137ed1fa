import { describe, expect, it } from 'vitest';
import { decodeResponse, encodeCall, XmlRpcFault } from './xml-rpc.js';

const ok = (value: string): string =>
  `<?xml version="1.0"?>\n<methodResponse>\n <params>\n  <param>\n   <value>${value}</value>\n  </param>\n </params>\n</methodResponse>\n`;

describe('XML-RPC codec', () => {
  it('encodes strings (escaped), ints, doubles, booleans, nil, arrays and structs', () => {
    expect(encodeCall('one.vm.info', ['u:p<&>', -3, 0.5, true, null, [1, 'a'], { k: false }])).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><methodCall><methodName>one.vm.info</methodName><params>' +
        '<param><value><string>u:p&lt;&amp;&gt;</string></value></param>' +
        '<param><value><int>-3</int></value></param>' +
        '<param><value><double>0.5</double></value></param>' +
        '<param><value><boolean>1</boolean></value></param>' +
        '<param><value><nil/></value></param>' +
        '<param><value><array><data><value><int>1</int></value><value><string>a</string></value></data></array></value></param>' +
        '<param><value><struct><member><name>k</name><value><boolean>0</boolean></value></member></struct></value></param>' +
        '</params></methodCall>',
    );
  });

  it("decodes OpenNebula's [success, value, code] array, keeping string whitespace and entities", () => {
    const body = ok(
      '<array><data>\n<value><boolean>1</boolean></value>\n<value><string> &lt;VM_POOL&gt;&amp;\n</string></value>\n<value><i4>0</i4></value>\n</data></array>',
    );
    expect(decodeResponse(body)).toEqual([true, ' <VM_POOL>&\n', 0]);
  });

  it('reads an untyped value as a string, and CDATA, i8, double, nil, base64 and structs', () => {
    expect(decodeResponse(ok('plain text'))).toBe('plain text');
    expect(decodeResponse(ok('<string><![CDATA[<x>]]></string>'))).toBe('<x>');
    expect(decodeResponse(ok('<string/>'))).toBe('');
    expect(decodeResponse(ok('<i8>9007199254740991</i8>'))).toBe(9007199254740991);
    expect(decodeResponse(ok('<double>-1.25</double>'))).toBe(-1.25);
    expect(decodeResponse(ok('<nil/>'))).toBeNull();
    expect(decodeResponse(ok('<base64>aGk=</base64>'))).toEqual(new Uint8Array(Buffer.from('hi')));
    expect(
      decodeResponse(
        ok(
          '<struct><member><name>a</name><value><int>1</int></value></member><member><name>b</name><value>x</value></member></struct>',
        ),
      ),
    ).toEqual({ a: 1, b: 'x' });
  });

  it('throws an XmlRpcFault with the code and string of a fault', () => {
    const body =
      '<?xml version="1.0"?><methodResponse><fault><value><struct>' +
      '<member><name>faultCode</name><value><int>-501</int></value></member>' +
      '<member><name>faultString</name><value><string>no such method</string></value></member>' +
      '</struct></value></fault></methodResponse>';
    const error: unknown = (() => {
      try {
        return decodeResponse(body);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(XmlRpcFault);
    expect(error).toMatchObject({ faultCode: -501, faultString: 'no such method' });
  });

  it.each([
    ['not XML-RPC', '<html>oops</html>'],
    ['no params', '<methodResponse></methodResponse>'],
    ['a bad int', ok('<int>1.5</int>')],
    ['an unknown type', ok('<date>x</date>')],
    ['two values in one', ok('<int>1</int><int>2</int>')],
  ])('refuses %s', (_, body) => {
    expect(() => decodeResponse(body)).toThrow(/XML-RPC/);
  });
});
