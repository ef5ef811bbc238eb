# kinfra_module(NAME) gives a module target an include root that holds only
# that module's own folder, so `#include "common/..."` resolves only for targets
# that link `common`. A stray include across modules fails the build instead of
# quietly working.
function(kinfra_module_includes target module visibility)
  set(root "${CMAKE_BINARY_DIR}/include-roots/${module}")
  if(NOT EXISTS "${root}/${module}")
    file(MAKE_DIRECTORY "${root}")
    file(CREATE_LINK "${CMAKE_SOURCE_DIR}/${module}" "${root}/${module}" SYMBOLIC)
  endif()
  target_include_directories(${target} ${visibility} "$<BUILD_INTERFACE:${root}>")
  # Installed as part of the kinfra CMake package (libkinfra_<module>.a): internal, never included
  # by users, who see only include/kinfra/.
  set_target_properties(${target} PROPERTIES OUTPUT_NAME "kinfra_${module}")
endfunction()
