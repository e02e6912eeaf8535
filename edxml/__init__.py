"""edXML (QCVN 102:2016) protocol library: model, reader, writer, rules, signatures. No I/O."""
